"""client2's silver rules, each pinned by given bronze rows and the silver rows expected.

Every test fills bronze for a batch, runs the silver step as the DAG runs it
(``silver.<step>``), and compares the whole silver table with rows worked out by hand
from the rule in the step's header. The row comments say which rule each row is there
for. ``given`` names each row's file ``<bronze table>_<batch>.csv`` and numbers the rows
1, 2, ... unless the table writes ``dwh_source_file`` / ``dwh_row_number`` itself (the
de-duplication tests do: the last delivered row is the latest file, then the highest row).
"""

from __future__ import annotations

from tests.rules.tables import expect, given, run_step

B1, B2 = "BATCH000001", "BATCH000002"


def again(conn, step: str) -> None:
    """Forget that a step ran, so running it for the same batch runs its SQL again
    (otherwise the task skips it: nothing it reads has changed, as far as it can see)."""
    conn.execute(
        "DELETE FROM tools.sql_step_state WHERE client_schema = 'client2' AND step_name = %s", (step,)
    )


# ------------------------------------------------------------------ billing_invoices
def test_invoice_ids_and_codes_are_trimmed_and_upper_cased(conn, client2, client_dags) -> None:
    """Invoice number, account id, plan code and currency trimmed and upper-cased; a
    blank plan code is NULL, a blank currency USD; amounts kept to the cent (credit notes
    keep their sign); dates and the Yes/No flag as delivered."""
    given(conn, "bronze_client2.billing_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date   | seats | amount | currency | status | auto_renew
        ' inv-1 '  | ' acc-1 '  | ' pro '   | 2026-01-05   | 2026-02-04 | 5     | 99.5   | ' eur '  | paid   | true    # padded, lower case
        INV-2      | ACC-2      | ''        | 2026-01-06   |            |       | 10.005 | ''       | open   | false   # blank plan and currency
        INV-3      | ACC-3      | '   '     | 2026-01-07   | 2026-01-07 |       | 0      |          | open   |         # spaces; no currency
        INV-4      | acc-2      | Basic     | 2026-01-08   |            |       | -20    | usd      | void   |         # a credit note
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.billing_invoices")

    # 10.005 -> 10.01: rounded half away from zero to the cent
    expect(conn, "silver_client2.billing_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date   | seats | amount | currency | status | auto_renew | dwh_batch_id | dwh_source_file                  | dwh_row_number
        INV-1      | ACC-1      | PRO       | 2026-01-05   | 2026-02-04 | 5     | 99.50  | EUR      | paid   | true       | BATCH000001  | billing_invoices_BATCH000001.csv | 1
        INV-2      | ACC-2      |           | 2026-01-06   |            |       | 10.01  | USD      | open   | false      | BATCH000001  | billing_invoices_BATCH000001.csv | 2
        INV-3      | ACC-3      |           | 2026-01-07   | 2026-01-07 |       | 0.00   | USD      | open   |            | BATCH000001  | billing_invoices_BATCH000001.csv | 3
        INV-4      | ACC-2      | BASIC     | 2026-01-08   |            |       | -20.00 | USD      | void   |            | BATCH000001  | billing_invoices_BATCH000001.csv | 4
    """)  # fmt: skip


def test_invoice_status_is_mapped_onto_five_values(conn, client2, client_dags) -> None:
    """paid, open, overdue and void in any case and padding, lower-cased; anything else,
    blank or missing is 'unknown'."""
    given(conn, "bronze_client2.billing_invoices", """
        invoice_no | account_id | invoice_date | amount | status
        INV-1      | A1         | 2026-01-01   | 1      | paid
        INV-2      | A1         | 2026-01-01   | 1      | PAID          # any case
        INV-3      | A1         | 2026-01-01   | 1      | ' Open '      # padded
        INV-4      | A1         | 2026-01-01   | 1      | OVERDUE
        INV-5      | A1         | 2026-01-01   | 1      | Void
        INV-6      | A1         | 2026-01-01   | 1      | refunded      # not one of the four
        INV-7      | A1         | 2026-01-01   | 1      | 'over due'    # nor this
        INV-8      | A1         | 2026-01-01   | 1      | ''            # blank
        INV-9      | A1         | 2026-01-01   | 1      |               # missing
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.billing_invoices")

    expect(conn, "silver_client2.billing_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date | seats | amount | currency | status  | auto_renew | dwh_batch_id | dwh_source_file                  | dwh_row_number
        INV-1      | A1         |           | 2026-01-01   |          |       | 1.00   | USD      | paid    |            | BATCH000001  | billing_invoices_BATCH000001.csv | 1
        INV-2      | A1         |           | 2026-01-01   |          |       | 1.00   | USD      | paid    |            | BATCH000001  | billing_invoices_BATCH000001.csv | 2
        INV-3      | A1         |           | 2026-01-01   |          |       | 1.00   | USD      | open    |            | BATCH000001  | billing_invoices_BATCH000001.csv | 3
        INV-4      | A1         |           | 2026-01-01   |          |       | 1.00   | USD      | overdue |            | BATCH000001  | billing_invoices_BATCH000001.csv | 4
        INV-5      | A1         |           | 2026-01-01   |          |       | 1.00   | USD      | void    |            | BATCH000001  | billing_invoices_BATCH000001.csv | 5
        INV-6      | A1         |           | 2026-01-01   |          |       | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 6
        INV-7      | A1         |           | 2026-01-01   |          |       | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 7
        INV-8      | A1         |           | 2026-01-01   |          |       | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 8
        INV-9      | A1         |           | 2026-01-01   |          |       | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 9
    """)  # fmt: skip


def test_invoice_seats_outside_zero_to_a_million_become_null(conn, client2, client_dags) -> None:
    """Seats between 0 and 1,000,000 (both included, compared as delivered) are kept,
    rounded to a whole seat; outside that range, or missing, they are NULL."""
    given(conn, "bronze_client2.billing_invoices", """
        invoice_no | account_id | invoice_date | amount | seats
        INV-1      | A1         | 2026-01-01   | 1      | 0             # the lower bound
        INV-2      | A1         | 2026-01-01   | 1      | 1000000       # the upper bound
        INV-3      | A1         | 2026-01-01   | 1      | 1000001       # above
        INV-4      | A1         | 2026-01-01   | 1      | -1            # below
        INV-5      | A1         | 2026-01-01   | 1      | 2.5           # rounded: 3
        INV-6      | A1         | 2026-01-01   | 1      | 999999.6      # in range, rounded: 1000000
        INV-7      | A1         | 2026-01-01   | 1      | 1000000.4     # above, though it rounds to 1000000
        INV-8      | A1         | 2026-01-01   | 1      | -0.4          # below, though it rounds to 0
        INV-9      | A1         | 2026-01-01   | 1      |               # missing
        INV-10     | A1         | 2026-01-01   | 1      | 12            # an ordinary count
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.billing_invoices")

    expect(conn, "silver_client2.billing_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date | seats   | amount | currency | status  | auto_renew | dwh_batch_id | dwh_source_file                  | dwh_row_number
        INV-1      | A1         |           | 2026-01-01   |          | 0       | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 1
        INV-2      | A1         |           | 2026-01-01   |          | 1000000 | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 2
        INV-3      | A1         |           | 2026-01-01   |          |         | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 3
        INV-4      | A1         |           | 2026-01-01   |          |         | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 4
        INV-5      | A1         |           | 2026-01-01   |          | 3       | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 5
        INV-6      | A1         |           | 2026-01-01   |          | 1000000 | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 6
        INV-7      | A1         |           | 2026-01-01   |          |         | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 7
        INV-8      | A1         |           | 2026-01-01   |          |         | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 8
        INV-9      | A1         |           | 2026-01-01   |          |         | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 9
        INV-10     | A1         |           | 2026-01-01   |          | 12      | 1.00   | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 10
    """)  # fmt: skip


def test_invoices_without_number_account_date_or_amount_are_dropped(conn, client2, client_dags) -> None:
    """A row without an invoice number or account id (NULL, empty or only spaces), an
    invoice date or an amount is no invoice."""
    given(conn, "bronze_client2.billing_invoices", """
        invoice_no | account_id | invoice_date | amount
        INV-1      | A1         | 2026-01-01   | 10       # the one complete row
                   | A1         | 2026-01-01   | 10       # no number
        ''         | A1         | 2026-01-01   | 10       # empty number
        '   '      | A1         | 2026-01-01   | 10       # spaces only
        INV-5      |            | 2026-01-01   | 10       # no account
        INV-6      | ''         | 2026-01-01   | 10       # empty account
        INV-7      | '  '       | 2026-01-01   | 10       # spaces only
        INV-8      | A1         |              | 10       # no invoice date
        INV-9      | A1         | 2026-01-01   |          # no amount
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.billing_invoices")

    expect(conn, "silver_client2.billing_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date | seats | amount | currency | status  | auto_renew | dwh_batch_id | dwh_source_file                  | dwh_row_number
        INV-1      | A1         |           | 2026-01-01   |          |       | 10.00  | USD      | unknown |            | BATCH000001  | billing_invoices_BATCH000001.csv | 1
    """)  # fmt: skip


def test_an_invoice_delivered_twice_keeps_the_last_delivered_row(conn, client2, client_dags) -> None:
    """One row per invoice number (as cleaned: padding and case do not make another
    invoice): the latest file wins, then the highest row number in it, wherever the
    rows sit in the table. XLSX rows start at 4 (the header is on row 3)."""
    given(conn, "bronze_client2.billing_invoices", """
        invoice_no | account_id | invoice_date | amount | status | dwh_source_file                    | dwh_row_number
        INV-1      | A1         | 2026-01-01   | 10     | open   | invoices_20260105_BATCH000001.xlsx | 4    # INV-1: the higher row
        INV-1      | A1         | 2026-01-01   | 11     | paid   | invoices_20260105_BATCH000001.xlsx | 5    #   of one file wins
        INV-2      | A1         | 2026-01-02   | 21     | paid   | invoices_20260105_BATCH000001.xlsx | 7    # INV-2: the highest row
        INV-2      | A1         | 2026-01-02   | 20     | open   | invoices_20260105_BATCH000001.xlsx | 6    #   comes first in the table
        inv-3      | A1         | 2026-01-03   | 31     | paid   | invoices_20260106_BATCH000001.xlsx | 4    # INV-3: the later file wins
        ' INV-3 '  | A1         | 2026-01-03   | 30     | open   | invoices_20260105_BATCH000001.xlsx | 9    #   over a higher row number
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.billing_invoices")

    expect(conn, "silver_client2.billing_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date | seats | amount | currency | status | auto_renew | dwh_batch_id | dwh_source_file                    | dwh_row_number
        INV-1      | A1         |           | 2026-01-01   |          |       | 11.00  | USD      | paid   |            | BATCH000001  | invoices_20260105_BATCH000001.xlsx | 5
        INV-2      | A1         |           | 2026-01-02   |          |       | 21.00  | USD      | paid   |            | BATCH000001  | invoices_20260105_BATCH000001.xlsx | 7
        INV-3      | A1         |           | 2026-01-03   |          |       | 31.00  | USD      | paid   |            | BATCH000001  | invoices_20260106_BATCH000001.xlsx | 4
    """)  # fmt: skip


def test_a_batch_replaces_only_its_own_invoices(conn, client2, client_dags) -> None:
    """Running a batch (again) deletes and re-inserts that batch's rows; the rows of
    other batches stay as they are."""
    given(conn, "silver_client2.billing_invoices", """
        invoice_no | account_id | invoice_date | amount | currency | status | dwh_batch_id | dwh_source_file               | dwh_row_number
        INV-1      | A1         | 2026-01-01   | 10.00  | USD      | paid   | BATCH000001  | invoices_BATCH000001.xlsx     | 4   # an earlier batch: kept
        INV-1      | A1         | 2026-01-01   | 99.00  | USD      | open   | BATCH000002  | invoices_BATCH000002.xlsx     | 4   # this batch's old row:
        STALE      | A1         | 2026-01-01   | 1.00   | USD      | open   | BATCH000002  | invoices_BATCH000002.xlsx     | 5   #   both replaced
    """)  # fmt: skip
    given(conn, "bronze_client2.billing_invoices", """
        invoice_no | account_id | invoice_date | amount | status
        INV-1      | A1         | 2026-01-01   | 12     | paid
        INV-2      | A2         | 2026-01-02   | 5      | open
    """, batch=B2)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.billing_invoices", batch=B2)

    expect(conn, "silver_client2.billing_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date | seats | amount | currency | status | auto_renew | dwh_batch_id | dwh_source_file                  | dwh_row_number
        INV-1      | A1         |           | 2026-01-01   |          |       | 10.00  | USD      | paid   |            | BATCH000001  | invoices_BATCH000001.xlsx        | 4
        INV-1      | A1         |           | 2026-01-01   |          |       | 12.00  | USD      | paid   |            | BATCH000002  | billing_invoices_BATCH000002.csv | 1
        INV-2      | A2         |           | 2026-01-02   |          |       | 5.00   | USD      | open   |            | BATCH000002  | billing_invoices_BATCH000002.csv | 2
    """)  # fmt: skip


# ------------------------------------------------------------------ billing_plans
def test_plans_are_trimmed_and_lower_cased_with_blanks_as_null(conn, client2, client_dags) -> None:
    """plan_code trimmed and upper-cased; the name trimmed; tier and billing period
    trimmed and lower-cased; blank text is NULL; the price kept to the cent; a row without
    a plan code is dropped."""
    given(conn, "bronze_client2.billing_plans", """
        plan_code | plan_name    | tier       | monthly_price | billing_period | is_active
        ' pro '   | ' Pro Plan ' | ' Growth ' | 49.999        | ' Monthly '    | true     # padded, mixed case
        BASIC     | ''           | ''         | 0             | '  '           | false    # blanks
        ent       |              |            |               |                |          # nothing but a code
        '   '     | Blank code   | growth     | 1             | monthly        | true     # no code: dropped
                  | No code      | growth     | 1             | monthly        | true     # no code: dropped
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.billing_plans")

    # 49.999 -> 50.00: rounded to the cent
    expect(conn, "silver_client2.billing_plans", """
        plan_code | plan_name | tier   | monthly_price | billing_period | is_active | dwh_batch_id | dwh_source_file               | dwh_row_number
        PRO       | Pro Plan  | growth | 50.00         | monthly        | true      | BATCH000001  | billing_plans_BATCH000001.csv | 1
        BASIC     |           |        | 0.00          |                | false     | BATCH000001  | billing_plans_BATCH000001.csv | 2
        ENT       |           |        |               |                |           | BATCH000001  | billing_plans_BATCH000001.csv | 3
    """)  # fmt: skip


def test_a_plan_delivered_twice_keeps_the_last_delivered_row(conn, client2, client_dags) -> None:
    """One row per plan code (as cleaned): the latest file wins, then the highest row."""
    given(conn, "bronze_client2.billing_plans", """
        plan_code | plan_name | monthly_price | dwh_source_file                 | dwh_row_number
        PRO       | Pro old   | 40            | plans_20260105_BATCH000001.csv  | 2    # PRO: the higher row wins
        pro       | Pro new   | 45            | plans_20260105_BATCH000001.csv  | 3
        BASIC     | Basic new | 10            | plans_20260106_BATCH000001.csv  | 2    # BASIC: the later file wins
        BASIC     | Basic old | 9             | plans_20260105_BATCH000001.csv  | 5    #   over a higher row
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.billing_plans")

    expect(conn, "silver_client2.billing_plans", """
        plan_code | plan_name | tier | monthly_price | billing_period | is_active | dwh_batch_id | dwh_source_file                | dwh_row_number
        PRO       | Pro new   |      | 45.00         |                |           | BATCH000001  | plans_20260105_BATCH000001.csv | 3
        BASIC     | Basic new |      | 10.00         |                |           | BATCH000001  | plans_20260106_BATCH000001.csv | 2
    """)  # fmt: skip


# ------------------------------------------------------------------ app_accounts
def test_accounts_are_trimmed_and_upper_cased_and_blank_country_is_null(conn, client2, client_dags) -> None:
    """account_id trimmed and upper-cased; company name trimmed (blank -> NULL); country
    code trimmed and upper-cased (blank -> NULL); a row without an account id dropped."""
    given(conn, "bronze_client2.app_accounts", """
        account_id | company_name  | country_code | segment    | signup_date | is_active
        ' acc-1 '  | ' Acme GmbH ' | ' de '       | SMB        | 2025-03-01  | true      # padded, lower case
        ACC-2      | ''            | ''           | Enterprise |             | false     # blanks
        ACC-3      |               | '  '         | SMB        |             |           # missing; spaces
        '   '      | No id         | FR           | SMB        | 2025-03-02  | true      # no id: dropped
                   | No id         | FR           | SMB        | 2025-03-02  | true      # no id: dropped
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.app_accounts")

    expect(conn, "silver_client2.app_accounts", """
        account_id | company_name | country_code | segment    | signup_date | is_active | dwh_batch_id | dwh_source_file              | dwh_row_number
        ACC-1      | Acme GmbH    | DE           | SMB        | 2025-03-01  | true      | BATCH000001  | app_accounts_BATCH000001.csv | 1
        ACC-2      |              |              | Enterprise |             | false     | BATCH000001  | app_accounts_BATCH000001.csv | 2
        ACC-3      |              |              | SMB        |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 3
    """)  # fmt: skip


def test_account_segment_is_mapped_onto_four_values(conn, client2, client_dags) -> None:
    """SMB, Mid-Market (also written with a space or as one word) and Enterprise in any
    case and padding; anything else, blank or missing is 'Unknown'."""
    given(conn, "bronze_client2.app_accounts", """
        account_id | segment
        A1         | smb
        A2         | ' SMB '          # padded
        A3         | Mid-Market
        A4         | 'mid market'     # a space for the dash
        A5         | MIDMARKET        # one word
        A6         | ENTERPRISE
        A7         | startup          # not a segment
        A8         | ''               # blank
        A9         |                  # missing
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.app_accounts")

    expect(conn, "silver_client2.app_accounts", """
        account_id | company_name | country_code | segment    | signup_date | is_active | dwh_batch_id | dwh_source_file              | dwh_row_number
        A1         |              |              | SMB        |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 1
        A2         |              |              | SMB        |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 2
        A3         |              |              | Mid-Market |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 3
        A4         |              |              | Mid-Market |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 4
        A5         |              |              | Mid-Market |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 5
        A6         |              |              | Enterprise |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 6
        A7         |              |              | Unknown    |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 7
        A8         |              |              | Unknown    |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 8
        A9         |              |              | Unknown    |             |           | BATCH000001  | app_accounts_BATCH000001.csv | 9
    """)  # fmt: skip


def test_an_account_delivered_twice_keeps_the_last_delivered_row(conn, client2, client_dags) -> None:
    """The app re-sends renamed accounts: one row per account id (as cleaned), the latest
    file first, then the highest row number."""
    given(conn, "bronze_client2.app_accounts", """
        account_id | company_name | dwh_source_file                    | dwh_row_number
        ACC-1      | Acme         | accounts_20260105_BATCH000001.json | 1    # ACC-1: renamed later
        ' acc-1 '  | Acme Corp    | accounts_20260105_BATCH000001.json | 2    #   in the same file
        ACC-2      | Beta new     | accounts_20260106_BATCH000001.json | 1    # ACC-2: the later file wins
        ACC-2      | Beta old     | accounts_20260105_BATCH000001.json | 3    #   over a higher row
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.app_accounts")

    expect(conn, "silver_client2.app_accounts", """
        account_id | company_name | country_code | segment | signup_date | is_active | dwh_batch_id | dwh_source_file                    | dwh_row_number
        ACC-1      | Acme Corp    |              | Unknown |             |           | BATCH000001  | accounts_20260105_BATCH000001.json | 2
        ACC-2      | Beta new     |              | Unknown |             |           | BATCH000001  | accounts_20260106_BATCH000001.json | 1
    """)  # fmt: skip


# ------------------------------------------------------------------ app_usage_events
def test_usage_events_are_cleaned_and_dated(conn, client2, client_dags) -> None:
    """event_id trimmed and lower-cased, account_id trimmed and upper-cased; event type
    and feature trimmed and lower-cased, a blank type 'unknown', a blank feature NULL;
    quantity 1 when not delivered (a delivered 0 or negative is kept); event_date is
    the day of event_ts."""
    given(conn, "bronze_client2.app_usage_events", """
        event_id   | account_id | event_type   | event_ts            | quantity | feature
        ' AB12CD ' | ' acc-1 '  | ' API_Call ' | 2026-01-05 23:59:59 | 3        | ' Export '   # padded, mixed case
        ef34       | ACC-1      | ''           | 2026-01-06 00:00:00 |          | ''           # blanks; no quantity
        EF35       | ACC-2      |              | 2026-01-06 12:00:00 | 0        |              # missing; zero kept
        ef36       | ACC-2      | login        | 2026-01-07 08:30:00 | -2       | '  '         # negative kept
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.app_usage_events")

    expect(conn, "silver_client2.app_usage_events", """
        event_id | account_id | event_type | event_ts            | event_date | quantity | feature | dwh_batch_id | dwh_source_file                  | dwh_row_number
        ab12cd   | ACC-1      | api_call   | 2026-01-05 23:59:59 | 2026-01-05 | 3        | export  | BATCH000001  | app_usage_events_BATCH000001.csv | 1
        ef34     | ACC-1      | unknown    | 2026-01-06 00:00:00 | 2026-01-06 | 1        |         | BATCH000001  | app_usage_events_BATCH000001.csv | 2
        ef35     | ACC-2      | unknown    | 2026-01-06 12:00:00 | 2026-01-06 | 0        |         | BATCH000001  | app_usage_events_BATCH000001.csv | 3
        ef36     | ACC-2      | login      | 2026-01-07 08:30:00 | 2026-01-07 | -2       |         | BATCH000001  | app_usage_events_BATCH000001.csv | 4
    """)  # fmt: skip


def test_usage_events_without_id_account_or_time_are_dropped(conn, client2, client_dags) -> None:
    """A row without an event id or account id (NULL, empty or only spaces), or without
    a time, is no event."""
    given(conn, "bronze_client2.app_usage_events", """
        event_id | account_id | event_ts
        e1       | ACC-1      | 2026-01-05 10:00:00    # the one complete row
                 | ACC-1      | 2026-01-05 10:00:00    # no id
        ''       | ACC-1      | 2026-01-05 10:00:00    # empty id
        '  '     | ACC-1      | 2026-01-05 10:00:00    # spaces only
        e5       |            | 2026-01-05 10:00:00    # no account
        e6       | ''         | 2026-01-05 10:00:00    # empty account
        e7       | '   '      | 2026-01-05 10:00:00    # spaces only
        e8       | ACC-1      |                        # no time
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.app_usage_events")

    expect(conn, "silver_client2.app_usage_events", """
        event_id | account_id | event_type | event_ts            | event_date | quantity | feature | dwh_batch_id | dwh_source_file                  | dwh_row_number
        e1       | ACC-1      | unknown    | 2026-01-05 10:00:00 | 2026-01-05 | 1        |         | BATCH000001  | app_usage_events_BATCH000001.csv | 1
    """)  # fmt: skip


def test_a_usage_event_delivered_twice_keeps_the_last_delivered_row(conn, client2, client_dags) -> None:
    """The app delivers at least once: one row per event id (case-insensitive: 'AB12'
    and 'ab12' are one event), the latest file first, then the highest row number."""
    given(conn, "bronze_client2.app_usage_events", """
        event_id | account_id | event_ts            | quantity | dwh_source_file                           | dwh_row_number
        ab12     | ACC-1      | 2026-01-05 10:00:00 | 1        | usage_events_20260105_BATCH000001.jsonl   | 1   # ab12: the higher
        AB12     | ACC-1      | 2026-01-05 10:00:00 | 2        | usage_events_20260105_BATCH000001.jsonl   | 2   #   row wins
        cd34     | ACC-1      | 2026-01-05 11:00:00 | 4        | usage_events_20260105_BATCH000001.jsonl   | 4   # cd34: the highest row
        cd34     | ACC-1      | 2026-01-05 11:00:00 | 3        | usage_events_20260105_BATCH000001.jsonl   | 3   #   comes first in the table
        ef56     | ACC-2      | 2026-01-06 09:00:00 | 6        | usage_events_20260106_BATCH000001.jsonl   | 1   # ef56: the later file wins
        ' EF56 ' | ACC-2      | 2026-01-06 09:00:00 | 5        | usage_events_20260105_BATCH000001.jsonl   | 7   #   over a higher row
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "silver.app_usage_events")

    expect(conn, "silver_client2.app_usage_events", """
        event_id | account_id | event_type | event_ts            | event_date | quantity | feature | dwh_batch_id | dwh_source_file                         | dwh_row_number
        ab12     | ACC-1      | unknown    | 2026-01-05 10:00:00 | 2026-01-05 | 2        |         | BATCH000001  | usage_events_20260105_BATCH000001.jsonl | 2
        cd34     | ACC-1      | unknown    | 2026-01-05 11:00:00 | 2026-01-05 | 4        |         | BATCH000001  | usage_events_20260105_BATCH000001.jsonl | 4
        ef56     | ACC-2      | unknown    | 2026-01-06 09:00:00 | 2026-01-06 | 6        |         | BATCH000001  | usage_events_20260106_BATCH000001.jsonl | 1
    """)  # fmt: skip


def test_rerunning_a_batch_replaces_only_its_own_usage_events(conn, client2, client_dags) -> None:
    """A batch run again after its bronze was reloaded (reprocessing) replaces its own
    events with the reloaded ones; another batch's events stay."""
    dag = client_dags["client2"]
    given(conn, "bronze_client2.app_usage_events", """
        event_id | account_id | event_ts            | quantity
        e1       | ACC-1      | 2026-01-05 10:00:00 | 1
    """, batch=B1)  # fmt: skip
    given(conn, "bronze_client2.app_usage_events", """
        event_id | account_id | event_ts            | quantity
        e2       | ACC-1      | 2026-01-06 10:00:00 | 5
        e3       | ACC-2      | 2026-01-06 11:00:00 | 1     # not in the reloaded file
    """, batch=B2)  # fmt: skip
    run_step(conn, dag, "silver.app_usage_events", batch=B1)
    run_step(conn, dag, "silver.app_usage_events", batch=B2)

    # The batch's bronze reloaded with a corrected file (by hand here, so the step's
    # state is forgotten: a real reload re-creates the batch's bronze child table).
    conn.execute("DELETE FROM bronze_client2.app_usage_events WHERE dwh_batch_id = %s", (B2,))
    given(conn, "bronze_client2.app_usage_events", """
        event_id | account_id | event_ts            | quantity
        e2       | ACC-1      | 2026-01-06 10:00:00 | 7
    """, batch=B2)  # fmt: skip
    again(conn, "app_usage_events")
    run_step(conn, dag, "silver.app_usage_events", batch=B2)

    expect(conn, "silver_client2.app_usage_events", """
        event_id | account_id | event_type | event_ts            | event_date | quantity | feature | dwh_batch_id | dwh_source_file                  | dwh_row_number
        e1       | ACC-1      | unknown    | 2026-01-05 10:00:00 | 2026-01-05 | 1        |         | BATCH000001  | app_usage_events_BATCH000001.csv | 1
        e2       | ACC-1      | unknown    | 2026-01-06 10:00:00 | 2026-01-06 | 7        |         | BATCH000002  | app_usage_events_BATCH000002.csv | 1
    """)  # fmt: skip
