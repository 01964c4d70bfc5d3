"""client1's silver rules, each pinned by given bronze rows and the silver rows expected.

Every test fills bronze for one batch, runs the silver step as the DAG runs it, and
compares the whole silver table with rows a reader can check by hand. The row comments
say which rule each row is there for.
"""

from __future__ import annotations

from tests.rules.tables import expect, given, run_step

SOURCE = "dwh_source_file"  # the file name given() writes; the lineage test checks it


# ------------------------------------------------------------------ crm_sales_details
def test_sales_amounts_are_made_consistent(conn, client1, client_dags) -> None:
    """Sales = quantity x |price| unless that is unknown; price = sales / quantity when
    the delivered price is missing or not positive."""
    given(conn, "bronze_client1.crm_sales_details", """
        sls_ord_num | sls_prd_key | sls_sales | sls_quantity | sls_price
        SO1         | P1          | 30        | 3            | 10      # consistent: kept
        SO2         | P1          | 50        | 3            | 10      # not qty x price: 30
        SO3         | P1          |           | 2            | 15      # missing: 30
        SO4         | P1          | -20       | 2            | 10      # negative: 20
        SO5         | P1          | 0         | 2            | 10      # zero: 20
        SO6         | P1          | 20        | 2            | -10     # |price| fits: kept, price 20/2
        SO7         | P1          | 45        | 3            |         # no price: kept, price 45/3
        SO8         | P1          | -45       | 3            |         # no price: sign dropped
        SO9         | P1          | 40        | 4            | 0       # zero price: as no price
        SO10        | P1          |           | 2            |         # neither: both unknown
        SO11        | P1          | 30        | 0            | 10      # no quantity: 0 x 10
        SO12        | P1          | 100       | 3            | 33.33   # cents: 3 x 33.33
        SO13        | P1          | 10        | 3            |         # 10/3 rounded to cents
        SO14        | P1          | 0         | 3            |         # no price, zero sales: unknown
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.crm_sales_details")

    expect(conn, "SELECT * FROM silver_client1.crm_sales_details", """
        sls_ord_num | sls_sales | sls_quantity | sls_price
        SO1         | 30        | 3            | 10
        SO2         | 30        | 3            | 10
        SO3         | 30        | 2            | 15
        SO4         | 20        | 2            | 10
        SO5         | 20        | 2            | 10
        SO6         | 20        | 2            | 10.00
        SO7         | 45        | 3            | 15.00
        SO8         | 45        | 3            | 15.00
        SO9         | 40        | 4            | 10.00
        SO10        |           | 2            |
        SO11        | 0         | 0            | 10
        SO12        | 99.99     | 3            | 33.33
        SO13        | 10        | 3            | 3.33
        SO14        |           | 3            |
    """)  # fmt: skip


def test_sales_date_integers_become_dates_or_null(conn, client1, client_dags) -> None:
    """YYYYMMDD integers become dates; 0, a wrong length or no such day becomes NULL."""
    given(conn, "bronze_client1.crm_sales_details", """
        sls_ord_num | sls_prd_key | sls_order_dt | sls_ship_dt | sls_due_dt
        SO1         | P1          | 20240105     | 20240112    | 20240119    # all real dates
        SO2         | P1          | 0            | 2024011     | 202401190   # 0, 7 and 9 digits
        SO3         | P1          | 20240230     | 20240229    | 20230229    # 30 Feb; leap 2024; not 2023
        SO4         | P1          | 19000229     | 20000229    | 20241301    # 1900 no leap; 2000 leap; month 13
        SO5         | P1          | 20240431     | 20240430    | 20241231    # 31 April; 30 April; 31 Dec
        SO6         | P1          | -20240105    |             | 99991231    # negative; NULL; the last date
        SO7         | P1          | 10000101     | 9991231     | 20240100    # the first date; 7 digits; day 0
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.crm_sales_details")

    expect(conn, "SELECT * FROM silver_client1.crm_sales_details", """
        sls_ord_num | sls_order_dt | sls_ship_dt | sls_due_dt
        SO1         | 2024-01-05   | 2024-01-12  | 2024-01-19
        SO2         |              |             |
        SO3         |              | 2024-02-29  |
        SO4         |              | 2000-02-29  |
        SO5         |              | 2024-04-30  | 2024-12-31
        SO6         |              |             | 9999-12-31
        SO7         | 1000-01-01   |             |
    """)  # fmt: skip


def test_sales_lines_are_trimmed_and_lines_without_keys_dropped(conn, client1, client_dags) -> None:
    """Order and product numbers trimmed (spaces, tabs, line breaks); a line without
    either is dropped; every other line is kept, duplicates too (gold collapses them),
    with its batch, file and row number."""
    given(conn, "bronze_client1.crm_sales_details", """
        sls_ord_num  | sls_prd_key    | sls_cust_id | sls_quantity | sls_price | dwh_source_file
        ' SO1 '      | ' BK-R93R-62 ' | 11000       | 1            | 10        | sales_details_BATCH000001.csv
        '\tSO2\t'    | BK-R93R-62     | 11001       | 2            | 10        | sales_details_BATCH000001.csv
        '   '        | BK-R93R-62     | 11002       | 1            | 10        | sales_details_BATCH000001.csv
        SO4          |                | 11003       | 1            | 10        | sales_details_BATCH000001.csv
        SO5          | ''             | 11004       | 1            | 10        | sales_details_BATCH000001.csv
        SO1          | BK-R93R-62     | 11000       | 3            | 10        | sales_details_BATCH000001.csv
        SO6          | HL-U509        |             | 1            | 10        | sales_details_BATCH000001.csv
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.crm_sales_details")

    expect(conn, "silver_client1.crm_sales_details", """
        sls_ord_num | sls_prd_key | sls_cust_id | sls_order_dt | sls_ship_dt | sls_due_dt | sls_sales | sls_quantity | sls_price | dwh_batch_id | dwh_source_file               | dwh_row_number
        SO1         | BK-R93R-62  | 11000       |              |             |            | 10        | 1            | 10        | BATCH000001  | sales_details_BATCH000001.csv | 1
        SO2         | BK-R93R-62  | 11001       |              |             |            | 20        | 2            | 10        | BATCH000001  | sales_details_BATCH000001.csv | 2
        SO1         | BK-R93R-62  | 11000       |              |             |            | 30        | 3            | 10        | BATCH000001  | sales_details_BATCH000001.csv | 6
        SO6         | HL-U509     |             |              |             |            | 10        | 1            | 10        | BATCH000001  | sales_details_BATCH000001.csv | 7
    """)  # fmt: skip


def test_a_batch_replaces_only_its_own_sales_lines(conn, client1, client_dags) -> None:
    """Re-running a batch deletes and re-inserts that batch's rows; other batches stay."""
    given(conn, "silver_client1.crm_sales_details", """
        sls_ord_num | sls_prd_key | sls_quantity | dwh_batch_id | dwh_row_number
        OLD1        | P1          | 1            | BATCH000001  | 1     # an earlier batch: kept
        STALE       | P1          | 9            | BATCH000002  | 1     # this batch's old row: replaced
    """)  # fmt: skip
    given(conn, "bronze_client1.crm_sales_details", """
        sls_ord_num | sls_prd_key | sls_quantity | sls_price
        NEW1        | P1          | 2            | 5
    """, batch="BATCH000002")  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.crm_sales_details", batch="BATCH000002")

    expect(conn, "SELECT * FROM silver_client1.crm_sales_details", """
        sls_ord_num | sls_quantity | dwh_batch_id
        OLD1        | 1            | BATCH000001
        NEW1        | 2            | BATCH000002
    """)  # fmt: skip


# ------------------------------------------------------------------ crm_cust_info
def test_customers_are_cleaned_and_codes_spelled_out(conn, client1, client_dags) -> None:
    """Names and codes trimmed, blank -> NULL; marital status M/S and gender M/F in any
    case and padding spelled out, anything else 'n/a'; rows without an id dropped."""
    given(conn, "bronze_client1.crm_cust_info", """
        cst_id | cst_key   | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date
        1      | ' AW1 '   | ' Jon '       | 'Yang  '     | M                  | M        | 2024-01-01
        2      | AW2       | Ann           | Lee          | ' s '              | ' f '    | 2024-01-02
        3      | AW3       | Bo            | Ka           | X                  | U        |
        4      | '  '      | ''            | '\t'         |                    | ''       | 2024-01-04
        5      | AW5       | Cy            | Do           | m                  | F        | 2024-01-05
               | AW6       | No            | Id           | S                  | M        | 2024-01-06
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.crm_cust_info")

    expect(conn, "silver_client1.crm_cust_info", """
        cst_id | cst_key | cst_firstname | cst_lastname | cst_marital_status | cst_gndr | cst_create_date | dwh_batch_id | dwh_row_number
        1      | AW1     | Jon           | Yang         | Married            | Male     | 2024-01-01      | BATCH000001  | 1
        2      | AW2     | Ann           | Lee          | Single             | Female   | 2024-01-02      | BATCH000001  | 2
        3      | AW3     | Bo            | Ka           | n/a                | n/a      |                 | BATCH000001  | 3
        4      |         |               |              | n/a                | n/a      | 2024-01-04      | BATCH000001  | 4
        5      | AW5     | Cy            | Do           | Married            | Female   | 2024-01-05      | BATCH000001  | 5
    """, ignore=[SOURCE])  # fmt: skip


def test_a_customer_delivered_twice_keeps_its_most_recent_row(conn, client1, client_dags) -> None:
    """The latest create date wins, whatever the order in the file; on a tie, or when
    no date is known, the later row in the file; a dated row beats an undated one."""
    given(conn, "bronze_client1.crm_cust_info", """
        cst_id | cst_firstname | cst_create_date
        5      | Old           | 2023-01-01      # 5: the later date wins ...
        5      | New           | 2024-01-01
        6      | Newer         | 2024-06-01      # 6: ... also when it comes first in the file
        6      | Older         | 2024-01-01
        7      | First         | 2024-01-01      # 7: same date: the later row
        7      | Second        | 2024-01-01
        8      | Dated         | 2024-01-01      # 8: a date beats none
        8      | Undated       |
        9      | A             |                 # 9: no dates: the later row
        9      | B             |
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.crm_cust_info")

    expect(conn, "SELECT * FROM silver_client1.crm_cust_info", """
        cst_id | cst_firstname | cst_create_date | dwh_row_number
        5      | New           | 2024-01-01      | 2
        6      | Newer         | 2024-06-01      | 3
        7      | Second        | 2024-01-01      | 6
        8      | Dated         | 2024-01-01      | 7
        9      | B             |                 | 10
    """)  # fmt: skip


# ------------------------------------------------------------------ crm_prd_info
def test_products_are_split_cleaned_and_spelled_out(conn, client1, client_dags) -> None:
    """prd_key: its first five characters are the category id, written with '_' as the
    ERP does; from the seventh on, the product number. Missing cost -> 0; product line
    M/R/S/T spelled out, anything else 'n/a'; rows without a key dropped."""
    given(conn, "bronze_client1.crm_prd_info", """
        prd_id | prd_key              | prd_nm          | prd_cost | prd_line | prd_start_dt
        210    | ' CO-RF-FR-R92B-58 ' | ' HL Road Frame '| 100      | ' r '    | 2024-01-01
        212    | BI-MB-BK-M82B-44     | Mountain-100    |          | M        | 2024-02-01
        213    | AC-HE-HL-U509        | Sport Helmet    | 35       | s        | 2024-01-01
        214    | BI-TB-BK-T79Y-60     | Touring-1000    | 500      | T        | 2024-01-01
        215    | CL-XX-ZZ-1           | Odd             | 1.5      | X        | 2024-01-01
        216    | '   '                | Blank key       | 1        | M        | 2024-01-01
        217    |                      | No key          | 1        | M        | 2024-01-01
        223    | AB                   | Short key       | 0        |          | 2024-01-01
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.crm_prd_info")

    expect(conn, "silver_client1.crm_prd_info", """
        prd_id | prd_key          | cat_id | prd_number | prd_nm        | prd_cost | prd_line    | prd_start_dt | prd_end_dt | dwh_batch_id | dwh_row_number
        210    | CO-RF-FR-R92B-58 | CO_RF  | FR-R92B-58 | HL Road Frame | 100      | Road        | 2024-01-01   |            | BATCH000001  | 1
        212    | BI-MB-BK-M82B-44 | BI_MB  | BK-M82B-44 | Mountain-100  | 0        | Mountain    | 2024-02-01   |            | BATCH000001  | 2
        213    | AC-HE-HL-U509    | AC_HE  | HL-U509    | Sport Helmet  | 35       | Other Sales | 2024-01-01   |            | BATCH000001  | 3
        214    | BI-TB-BK-T79Y-60 | BI_TB  | BK-T79Y-60 | Touring-1000  | 500      | Touring     | 2024-01-01   |            | BATCH000001  | 4
        215    | CL-XX-ZZ-1       | CL_XX  | ZZ-1       | Odd           | 1.5      | n/a         | 2024-01-01   |            | BATCH000001  | 5
        223    | AB               | AB     | ''         | Short key     | 0        | n/a         | 2024-01-01   |            | BATCH000001  | 8
    """, ignore=[SOURCE])  # fmt: skip


def test_product_validity_ends_the_day_before_the_next_row_starts(conn, client1, client_dags) -> None:
    """The delivered end date is not trusted: a history row ends the day before the next
    row of its key starts; the row with no successor has no end (the current product).
    A row without a start date counts as the oldest; rows starting the same day are
    ordered by id. A product id delivered twice keeps its last row."""
    given(conn, "bronze_client1.crm_prd_info", """
        prd_id | prd_key          | prd_nm  | prd_cost | prd_start_dt | prd_end_dt
        210    | CO-RF-FR-R92B-58 | Frame 1 | 100      | 2023-01-01   | 2022-12-01   # ends before it starts
        211    | CO-RF-FR-R92B-58 | Frame 2 | 120      | 2024-01-01   | 2024-06-30   # current: end dropped
        219    | AC-LI-LT-H902    | Light 0 | 10       |              |              # no start: the oldest
        220    | AC-LI-LT-H902    | Light 1 | 12       | 2024-03-01   |              # ... so 219 ends 29 Feb
        222    | AC-PU-PU-0452    | Pump B  | 6        | 2024-01-01   |              # same day: by id, 221 first
        221    | AC-PU-PU-0452    | Pump A  | 5        | 2024-01-01   |
        218    | AC-BC-WB-H098    | Old     | 5        | 2024-01-01   |              # 218 twice: the last row
        218    | AC-BC-WB-H098    | Bottle  | 6        | 2024-01-01   |
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.crm_prd_info")

    expect(conn, "SELECT * FROM silver_client1.crm_prd_info", """
        prd_id | prd_nm  | prd_cost | prd_start_dt | prd_end_dt
        210    | Frame 1 | 100      | 2023-01-01   | 2023-12-31
        211    | Frame 2 | 120      | 2024-01-01   |
        219    | Light 0 | 10       |              | 2024-02-29
        220    | Light 1 | 12       | 2024-03-01   |
        221    | Pump A  | 5        | 2024-01-01   | 2023-12-31
        222    | Pump B  | 6        | 2024-01-01   |
        218    | Bottle  | 6        | 2024-01-01   |
    """)  # fmt: skip


# ------------------------------------------------------------------ erp_cust_az12
def test_erp_birth_data_is_keyed_cleaned_and_deduplicated(conn, client1, client_dags) -> None:
    """CID becomes the CRM customer key (trimmed, the NAS prefix and dashes removed);
    birth dates in the future -> NULL; M/Male and F/Female in any case and padding are
    spelled out, anything else 'n/a'; one row per customer: the last in the file."""
    given(conn, "bronze_client1.erp_cust_az12", """
        cid                | bdate      | gen
        NASAW00011000      | 1971-10-06 | M           # prefix removed
        AW00011001         | 1976-05-10 | ' Female '  # no prefix, padded gender
        ' NASAW00011002 '  | 2999-01-01 | FEMALE      # padded; born in the future: NULL
        AW-00011003        |            | f           # dash removed; no birth date
        NASAW-00011004     | 1980-01-01 | male        # prefix and dash
        AW00011005         | 1980-01-02 | ''          # blank gender
        AW00011006         | 1980-01-03 | X           # unknown gender
        AW00011007         | 1980-01-04 |             # no gender
        '  '               | 1980-01-05 | M           # no id: dropped
        NAS                | 1980-01-06 | M           # only the prefix: dropped
        '-'                | 1980-01-07 | M           # only a dash: dropped
        AW00011008         | 1990-01-01 | M           # 11008 twice: the last row wins
        NASAW00011008      | 1991-02-02 | F
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.erp_cust_az12")

    expect(conn, "silver_client1.erp_cust_az12", """
        cid        | bdate      | gen    | dwh_batch_id | dwh_row_number
        AW00011000 | 1971-10-06 | Male   | BATCH000001  | 1
        AW00011001 | 1976-05-10 | Female | BATCH000001  | 2
        AW00011002 |            | Female | BATCH000001  | 3
        AW00011003 |            | Female | BATCH000001  | 4
        AW00011004 | 1980-01-01 | Male   | BATCH000001  | 5
        AW00011005 | 1980-01-02 | n/a    | BATCH000001  | 6
        AW00011006 | 1980-01-03 | n/a    | BATCH000001  | 7
        AW00011007 | 1980-01-04 | n/a    | BATCH000001  | 8
        AW00011008 | 1991-02-02 | Female | BATCH000001  | 13
    """, ignore=[SOURCE])  # fmt: skip


# ------------------------------------------------------------------ erp_loc_a101
def test_erp_countries_are_unified_and_locations_keyed(conn, client1, client_dags) -> None:
    """CID becomes the CRM key (trimmed, dashes removed); country spellings unified
    (DE/Germany, US/USA/United States, GB/UK/United Kingdom, any case), blank -> 'n/a',
    anything else trimmed as delivered; one row per customer: the last in the file."""
    given(conn, "bronze_client1.erp_loc_a101", """
        cid              | cntry
        AW-00011000      | DE
        AW00011001       | ' Germany '
        AW-00011002      | US
        AW00011003       | USA
        AW00011004       | United States
        AW00011005       | ' usa '
        AW00011006       | UK
        AW00011007       | gb
        AW00011008       | United Kingdom
        AW00011009       | ''
        AW00011010       |
        AW00011011       | ' France '
        ' AW-00011012 '  | Canada
        '   '            | DE           # no id: dropped
        '--'             | DE           # only dashes: dropped
        AW00011013       | DE           # 11013 twice: the last row wins
        AW-00011013      | Australia
        AW00011014       | germany      # any case
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.erp_loc_a101")

    expect(conn, "silver_client1.erp_loc_a101", """
        cid        | cntry          | dwh_batch_id | dwh_row_number
        AW00011000 | Germany        | BATCH000001  | 1
        AW00011001 | Germany        | BATCH000001  | 2
        AW00011002 | United States  | BATCH000001  | 3
        AW00011003 | United States  | BATCH000001  | 4
        AW00011004 | United States  | BATCH000001  | 5
        AW00011005 | United States  | BATCH000001  | 6
        AW00011006 | United Kingdom | BATCH000001  | 7
        AW00011007 | United Kingdom | BATCH000001  | 8
        AW00011008 | United Kingdom | BATCH000001  | 9
        AW00011009 | n/a            | BATCH000001  | 10
        AW00011010 | n/a            | BATCH000001  | 11
        AW00011011 | France         | BATCH000001  | 12
        AW00011012 | Canada         | BATCH000001  | 13
        AW00011013 | Australia      | BATCH000001  | 17
        AW00011014 | Germany        | BATCH000001  | 18
    """, ignore=[SOURCE])  # fmt: skip


# ------------------------------------------------------------------ erp_px_cat_g1v2
def test_erp_categories_are_trimmed_and_deduplicated(conn, client1, client_dags) -> None:
    """Every value trimmed, blank -> NULL; a row without an id dropped; one row per
    category id: the last in the file."""
    given(conn, "bronze_client1.erp_px_cat_g1v2", """
        id        | cat             | subcat         | maintenance
        ' AC_BR ' | ' Accessories ' | ' Bike Racks ' | ' Yes '
        AC_HE     | ''              |                | ' '
        ''        | Bikes           | Road Bikes     | Yes        # no id: dropped
        CO_RF     | Components      | Road Frame     | No         # CO_RF twice: the last row
        CO_RF     | Components      | Road Frames    | Yes
    """)  # fmt: skip

    run_step(conn, client_dags["client1"], "silver.erp_px_cat_g1v2")

    expect(conn, "silver_client1.erp_px_cat_g1v2", """
        id    | cat         | subcat      | maintenance | dwh_batch_id | dwh_row_number
        AC_BR | Accessories | Bike Racks  | Yes         | BATCH000001  | 1
        AC_HE |             |             |             | BATCH000001  | 2
        CO_RF | Components  | Road Frames | Yes         | BATCH000001  | 5
    """, ignore=[SOURCE])  # fmt: skip
