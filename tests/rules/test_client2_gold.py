"""client2's gold rules (the star schema and its two materialized views), each pinned by
given silver (or gold) rows and the gold rows expected.

Every test fills silver (for the dimensions and facts) or gold (for the views) for one
or more batches, runs the step as the DAG runs it (``gold.<step>``,
``refresh_views.<view>``) and compares the whole table with rows worked out by hand.
Surrogate keys are identities: where a test cannot know their values it leaves them out
of the table and shows them as the natural key of the row they point to (the account id,
the plan code); where a test fills a fresh dimension itself, its keys are 1, 2, ... in
the order given, and the test checks that they are.
"""

from __future__ import annotations

from tests.rules.tables import expect, given, run_step

B1, B2 = "BATCH000001", "BATCH000002"

# A fact's surrogate keys shown as the dimension members they point to.
INVOICE_LINKS = """
    SELECT f.invoice_no, f.account_id, a.account_id AS dim_account, f.plan_code,
           p.plan_code AS dim_plan, f.dwh_batch_id
    FROM gold_client2.fact_invoices AS f
    LEFT JOIN gold_client2.dim_accounts AS a ON a.account_key = f.account_key
    LEFT JOIN gold_client2.dim_plans AS p ON p.plan_key = f.plan_key"""
EVENT_LINKS = """
    SELECT f.event_id, f.account_id, a.account_id AS dim_account, f.dwh_batch_id
    FROM gold_client2.fact_usage_events AS f
    LEFT JOIN gold_client2.dim_accounts AS a ON a.account_key = f.account_key"""


def again(conn, step: str) -> None:
    """Forget that a step ran, so running it for the same batch runs its SQL again
    (otherwise the task may skip it: nothing it reads has changed, as far as it sees;
    rows given by the test are hand edits it cannot see)."""
    conn.execute(
        "DELETE FROM tools.sql_step_state WHERE client_schema = 'client2' AND step_name = %s", (step,)
    )


def keys(conn, table: str, natural: str, key: str) -> dict:
    return dict(conn.execute(f"SELECT {natural}, {key} FROM gold_client2.{table}").fetchall())


def updated_at(conn, table: str, natural: str) -> dict:
    return dict(conn.execute(f"SELECT {natural}, dwh_updated_at FROM gold_client2.{table}").fetchall())


def redeliver(conn, table: str, batch: str, text: str) -> None:
    """Replace a batch's silver rows, as its silver step does when the batch is
    reprocessed with a corrected file."""
    conn.execute(f"DELETE FROM silver_client2.{table} WHERE dwh_batch_id = %s", (batch,))
    given(conn, f"silver_client2.{table}", text, batch=batch)


# ------------------------------------------------------------------ dim_accounts
def test_accounts_are_the_batchs_silver_accounts(conn, client2, client_dags) -> None:
    """The batch's silver accounts, every attribute as silver has it, each with a key of
    its own; another batch's accounts are not this batch's."""
    given(conn, "silver_client2.app_accounts", """
        account_id | company_name | country_code | segment    | signup_date | is_active | dwh_batch_id
        ACC-1      | Acme         | DE           | SMB        | 2025-03-01  | true      | BATCH000001
        ACC-2      |              |              | Unknown    |             |           | BATCH000001
        ACC-9      | Later        | US           | Enterprise | 2025-04-01  | false     | BATCH000002   # not this batch
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "gold.dim_accounts", batch=B1)

    expect(conn, "gold_client2.dim_accounts", """
        account_id | company_name | country_code | segment | signup_date | is_active | dwh_batch_id
        ACC-1      | Acme         | DE           | SMB     | 2025-03-01  | true      | BATCH000001
        ACC-2      |              |              | Unknown |             |           | BATCH000001
    """, ignore=["account_key"])  # fmt: skip
    assert len(set(keys(conn, "dim_accounts", "account_id", "account_key").values())) == 2


def test_an_account_keeps_its_key_and_an_older_batch_never_overwrites_it(conn, client2, client_dags) -> None:
    """SCD type 1 on account_id: a later batch overwrites the account in place (same
    key) and adds new accounts; an older batch run again changes nothing it did not
    write last; an unchanged batch run again changes nothing."""
    dag = client_dags["client2"]
    accounts = "silver_client2.app_accounts"
    given(conn, accounts, """
        account_id | company_name | country_code | segment | signup_date | is_active
        ACC-1      | Acme         | DE           | SMB     | 2025-03-01  | true
        ACC-2      | Beta         | FR           | Unknown | 2025-03-02  | true
    """, batch=B1)  # fmt: skip
    run_step(conn, dag, "gold.dim_accounts", batch=B1)
    first = keys(conn, "dim_accounts", "account_id", "account_key")
    given(conn, accounts, """
        account_id | company_name | country_code | segment    | signup_date | is_active
        ACC-1      | Acme Corp    | AT           | Enterprise | 2025-03-01  | false      # renamed, moved
        ACC-3      | Gamma        | US           | SMB        | 2025-05-05  | true       # new
    """, batch=B2)  # fmt: skip
    run_step(conn, dag, "gold.dim_accounts", batch=B2)
    expected = """
        account_id | company_name | country_code | segment    | signup_date | is_active | dwh_batch_id
        ACC-1      | Acme Corp    | AT           | Enterprise | 2025-03-01  | false     | BATCH000002
        ACC-2      | Beta         | FR           | Unknown    | 2025-03-02  | true      | BATCH000001
        ACC-3      | Gamma        | US           | SMB        | 2025-05-05  | true      | BATCH000002
    """  # fmt: skip
    expect(conn, "gold_client2.dim_accounts", expected, ignore=["account_key"])

    # again(): each re-run below must run its statements, whatever the skip check finds.
    again(conn, "dim_accounts")
    run_step(conn, dag, "gold.dim_accounts", batch=B1)  # older: must not undo the rename
    expect(conn, "gold_client2.dim_accounts", expected, ignore=["account_key"])
    again(conn, "dim_accounts")
    run_step(conn, dag, "gold.dim_accounts", batch=B2)  # the same again: the same rows
    expect(conn, "gold_client2.dim_accounts", expected, ignore=["account_key"])
    after = keys(conn, "dim_accounts", "account_id", "account_key")
    assert (after["ACC-1"], after["ACC-2"]) == (first["ACC-1"], first["ACC-2"])  # keys kept
    assert after["ACC-3"] not in first.values()


def test_a_reprocessed_batch_overwrites_its_own_accounts(conn, client2, client_dags) -> None:
    """The batch that last wrote an account may write it again: reprocessing a batch
    with a corrected file corrects the account, under the same key."""
    dag = client_dags["client2"]
    given(conn, "silver_client2.app_accounts", """
        account_id | company_name | segment
        ACC-1      | Acme         | SMB
    """, batch=B1)  # fmt: skip
    run_step(conn, dag, "gold.dim_accounts", batch=B1)
    first = keys(conn, "dim_accounts", "account_id", "account_key")
    redeliver(conn, "app_accounts", B1, """
        account_id | company_name | segment
        ACC-1      | Acme GmbH    | Mid-Market
    """)  # fmt: skip
    again(conn, "dim_accounts")
    run_step(conn, dag, "gold.dim_accounts", batch=B1)

    expect(conn, "gold_client2.dim_accounts", """
        account_id | company_name | country_code | segment    | signup_date | is_active | dwh_batch_id
        ACC-1      | Acme GmbH    |              | Mid-Market |             |           | BATCH000001
    """, ignore=["account_key"])  # fmt: skip
    assert keys(conn, "dim_accounts", "account_id", "account_key") == first


# ------------------------------------------------------------------ dim_plans
def test_plans_upsert_by_code_and_plans_absent_from_a_list_are_kept(conn, client2, client_dags) -> None:
    """SCD type 1 on plan_code: a later price list updates its plans in place (same
    key); a plan it does not list is kept as it was (the list is optional and may be
    partial); an older list run again changes nothing."""
    dag = client_dags["client2"]
    plans = "silver_client2.billing_plans"
    given(conn, plans, """
        plan_code | plan_name | tier    | monthly_price | billing_period | is_active
        PRO       | Pro       | growth  | 49.00         | monthly        | true
        BASIC     | Basic     | starter | 9.00          | monthly        | true
    """, batch=B1)  # fmt: skip
    run_step(conn, dag, "gold.dim_plans", batch=B1)
    first = keys(conn, "dim_plans", "plan_code", "plan_key")
    given(conn, plans, """
        plan_code | plan_name | tier    | monthly_price | billing_period | is_active
        PRO       | Pro 2026  | scale   | 590.00        | annual         | false      # BASIC not listed
    """, batch=B2)  # fmt: skip
    run_step(conn, dag, "gold.dim_plans", batch=B2)
    again(conn, "dim_plans")
    run_step(conn, dag, "gold.dim_plans", batch=B1)  # older: PRO stays as B2 wrote it

    expect(conn, "gold_client2.dim_plans", """
        plan_code | plan_name | tier    | monthly_price | billing_period | is_active | dwh_batch_id
        PRO       | Pro 2026  | scale   | 590.00        | annual         | false     | BATCH000002
        BASIC     | Basic     | starter | 9.00          | monthly        | true      | BATCH000001
    """, ignore=["plan_key"])  # fmt: skip
    assert keys(conn, "dim_plans", "plan_code", "plan_key") == first


# ------------------------------------------------------------------ fact_invoices
def given_accounts_and_plans(conn, accounts: str, plans: str, batch: str = B1) -> None:
    for account in accounts.split():
        given(conn, "gold_client2.dim_accounts", f"account_id | segment\n{account} | SMB", batch=batch)
    for plan in plans.split():
        given(conn, "gold_client2.dim_plans", f"plan_code\n{plan}", batch=batch)


def test_invoices_find_their_account_and_plan_keys(conn, client2, client_dags) -> None:
    """One fact row per silver invoice of the batch, every attribute as silver has it;
    the account and plan keys looked up in the dimensions, NULL when the member is not
    there yet (the fact is kept, with its account id and plan code for later)."""
    given_accounts_and_plans(conn, "ACC-1 ACC-2", "PRO BASIC")
    given(conn, "silver_client2.billing_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date   | seats | amount | currency | status  | auto_renew
        INV-1      | ACC-1      | PRO       | 2026-01-05   | 2026-02-04 | 10    | 100.00 | USD      | paid    | true    # both known
        INV-2      | ACC-2      |           | 2026-01-06   |            |       | 50.00  | EUR      | open    | false   # no plan
        INV-3      | ACC-9      | BASIC     | 2026-01-07   | 2026-01-21 | 1     | 9.00   | USD      | overdue |         # unknown account
        INV-4      | ACC-1      | GOLD      | 2026-01-08   |            | 3     | -5.00  | USD      | void    |         # unknown plan
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "gold.fact_invoices")

    expect(conn, "gold_client2.fact_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date   | seats | amount | currency | status  | auto_renew | dwh_batch_id
        INV-1      | ACC-1      | PRO       | 2026-01-05   | 2026-02-04 | 10    | 100.00 | USD      | paid    | true       | BATCH000001
        INV-2      | ACC-2      |           | 2026-01-06   |            |       | 50.00  | EUR      | open    | false      | BATCH000001
        INV-3      | ACC-9      | BASIC     | 2026-01-07   | 2026-01-21 | 1     | 9.00   | USD      | overdue |            | BATCH000001
        INV-4      | ACC-1      | GOLD      | 2026-01-08   |            | 3     | -5.00  | USD      | void    |            | BATCH000001
    """, ignore=["invoice_key", "account_key", "plan_key"])  # fmt: skip
    expect(conn, INVOICE_LINKS, """
        invoice_no | account_id | dim_account | plan_code | dim_plan | dwh_batch_id
        INV-1      | ACC-1      | ACC-1       | PRO       | PRO      | BATCH000001
        INV-2      | ACC-2      | ACC-2       |           |          | BATCH000001
        INV-3      | ACC-9      |             | BASIC     | BASIC    | BATCH000001
        INV-4      | ACC-1      | ACC-1       | GOLD      |          | BATCH000001
    """)  # fmt: skip


def test_invoices_link_late_members_and_an_older_batch_never_wins(conn, client2, client_dags) -> None:
    """A later batch updates an invoice it delivers again and attaches the earlier
    invoices whose account or plan has arrived since; an older batch run again changes
    nothing; an unchanged batch run again changes nothing."""
    dag = client_dags["client2"]
    invoices = "silver_client2.billing_invoices"
    given_accounts_and_plans(conn, "ACC-1", "PRO", batch=B1)
    given(conn, invoices, """
        invoice_no | account_id | plan_code | invoice_date | seats | amount | currency | status
        INV-1      | ACC-1      | PRO       | 2026-01-05   | 10    | 100.00 | USD      | open
        INV-2      | ACC-2      | BASIC     | 2026-01-06   | 1     | 9.00   | USD      | open    # neither known yet
    """, batch=B1)  # fmt: skip
    run_step(conn, dag, "gold.fact_invoices", batch=B1)
    expect(conn, INVOICE_LINKS, """
        invoice_no | account_id | dim_account | plan_code | dim_plan | dwh_batch_id
        INV-1      | ACC-1      | ACC-1       | PRO       | PRO      | BATCH000001
        INV-2      | ACC-2      |             | BASIC     |          | BATCH000001
    """)  # fmt: skip

    given_accounts_and_plans(conn, "ACC-2", "BASIC", batch=B2)  # the late members
    given(conn, invoices, """
        invoice_no | account_id | plan_code | invoice_date | seats | amount | currency | status
        INV-1      | ACC-1      | PRO       | 2026-01-05   | 12    | 120.00 | USD      | paid    # corrected
        INV-3      | ACC-2      | PRO       | 2026-02-01   | 2     | 20.00  | EUR      | open    # new
    """, batch=B2)  # fmt: skip
    run_step(conn, dag, "gold.fact_invoices", batch=B2)
    facts = """
        invoice_no | account_id | plan_code | invoice_date | due_date | seats | amount | currency | status | auto_renew | dwh_batch_id
        INV-1      | ACC-1      | PRO       | 2026-01-05   |          | 12    | 120.00 | USD      | paid   |            | BATCH000002
        INV-2      | ACC-2      | BASIC     | 2026-01-06   |          | 1     | 9.00   | USD      | open   |            | BATCH000001
        INV-3      | ACC-2      | PRO       | 2026-02-01   |          | 2     | 20.00  | EUR      | open   |            | BATCH000002
    """  # fmt: skip
    links = """
        invoice_no | account_id | dim_account | plan_code | dim_plan | dwh_batch_id
        INV-1      | ACC-1      | ACC-1       | PRO       | PRO      | BATCH000002
        INV-2      | ACC-2      | ACC-2       | BASIC     | BASIC    | BATCH000001   # linked late, by B2
        INV-3      | ACC-2      | ACC-2       | PRO       | PRO      | BATCH000002
    """  # fmt: skip
    expect(conn, "gold_client2.fact_invoices", facts, ignore=["invoice_key", "account_key", "plan_key"])
    expect(conn, INVOICE_LINKS, links)

    # again(): each re-run below must run its statements, whatever the skip check finds.
    again(conn, "fact_invoices")
    run_step(conn, dag, "gold.fact_invoices", batch=B1)  # older: INV-1 stays as B2 wrote it
    expect(conn, "gold_client2.fact_invoices", facts, ignore=["invoice_key", "account_key", "plan_key"])
    expect(conn, INVOICE_LINKS, links)
    again(conn, "fact_invoices")
    run_step(conn, dag, "gold.fact_invoices", batch=B2)  # the same again: the same rows
    expect(conn, "gold_client2.fact_invoices", facts, ignore=["invoice_key", "account_key", "plan_key"])
    expect(conn, INVOICE_LINKS, links)


def test_a_reprocessed_batch_overwrites_its_own_invoices(conn, client2, client_dags) -> None:
    """The batch that last wrote an invoice may write it again: reprocessing it with a
    corrected file corrects the invoice, and its new plan is looked up."""
    dag = client_dags["client2"]
    given_accounts_and_plans(conn, "ACC-1", "PRO BASIC")
    given(conn, "silver_client2.billing_invoices", """
        invoice_no | account_id | plan_code | invoice_date | amount | currency | status
        INV-1      | ACC-1      | PRO       | 2026-01-05   | 100.00 | USD      | open
    """)  # fmt: skip
    run_step(conn, dag, "gold.fact_invoices")
    redeliver(conn, "billing_invoices", B1, """
        invoice_no | account_id | plan_code | invoice_date | amount | currency | status
        INV-1      | ACC-1      | BASIC     | 2026-01-05   | 10.00  | USD      | paid
    """)  # fmt: skip
    again(conn, "fact_invoices")
    run_step(conn, dag, "gold.fact_invoices")

    expect(conn, "gold_client2.fact_invoices", """
        invoice_no | account_id | plan_code | invoice_date | due_date | seats | amount | currency | status | auto_renew | dwh_batch_id
        INV-1      | ACC-1      | BASIC     | 2026-01-05   |          |       | 10.00  | USD      | paid   |            | BATCH000001
    """, ignore=["invoice_key", "account_key", "plan_key"])  # fmt: skip
    expect(conn, INVOICE_LINKS, """
        invoice_no | account_id | dim_account | plan_code | dim_plan | dwh_batch_id
        INV-1      | ACC-1      | ACC-1       | BASIC     | BASIC    | BATCH000001
    """)  # fmt: skip


# ------------------------------------------------------------------ fact_usage_events
def test_usage_events_find_their_account_key(conn, client2, client_dags) -> None:
    """One fact row per silver event of the batch, every attribute as silver has it;
    the account key looked up in dim_accounts, NULL when the account is not there yet
    (the event is kept, with its account id for later)."""
    given_accounts_and_plans(conn, "ACC-1", "")
    given(conn, "silver_client2.app_usage_events", """
        event_id | account_id | event_type | event_ts            | event_date | quantity | feature
        e1       | ACC-1      | api_call   | 2026-01-05 10:00:00 | 2026-01-05 | 3        | export    # known account
        e2       | ACC-9      | login      | 2026-01-06 00:00:00 | 2026-01-06 | 1        |           # unknown account
    """)  # fmt: skip

    run_step(conn, client_dags["client2"], "gold.fact_usage_events")

    expect(conn, "gold_client2.fact_usage_events", """
        event_id | account_id | event_type | event_ts            | event_date | quantity | feature | dwh_batch_id
        e1       | ACC-1      | api_call   | 2026-01-05 10:00:00 | 2026-01-05 | 3        | export  | BATCH000001
        e2       | ACC-9      | login      | 2026-01-06 00:00:00 | 2026-01-06 | 1        |         | BATCH000001
    """, ignore=["event_key", "account_key"])  # fmt: skip
    expect(conn, EVENT_LINKS, """
        event_id | account_id | dim_account | dwh_batch_id
        e1       | ACC-1      | ACC-1       | BATCH000001
        e2       | ACC-9      |             | BATCH000001
    """)  # fmt: skip


def test_usage_events_link_late_accounts_and_an_older_batch_never_wins(conn, client2, client_dags) -> None:
    """A later batch updates an event it delivers again and attaches the earlier events
    whose account has arrived since; an older batch run again changes nothing."""
    dag = client_dags["client2"]
    events = "silver_client2.app_usage_events"
    given_accounts_and_plans(conn, "ACC-1", "", batch=B1)
    given(conn, events, """
        event_id | account_id | event_type | event_ts            | event_date | quantity
        e1       | ACC-1      | api_call   | 2026-01-05 10:00:00 | 2026-01-05 | 5
        e2       | ACC-2      | login      | 2026-01-05 11:00:00 | 2026-01-05 | 1      # account not known yet
    """, batch=B1)  # fmt: skip
    run_step(conn, dag, "gold.fact_usage_events", batch=B1)
    expect(conn, EVENT_LINKS, """
        event_id | account_id | dim_account | dwh_batch_id
        e1       | ACC-1      | ACC-1       | BATCH000001
        e2       | ACC-2      |             | BATCH000001
    """)  # fmt: skip

    given_accounts_and_plans(conn, "ACC-2", "", batch=B2)  # the late account
    given(conn, events, """
        event_id | account_id | event_type | event_ts            | event_date | quantity | feature
        e1       | ACC-1      | api_call   | 2026-01-05 10:00:00 | 2026-01-05 | 7        | sync     # corrected
        e3       | ACC-2      | api_call   | 2026-01-06 09:00:00 | 2026-01-06 | 2        |          # new
    """, batch=B2)  # fmt: skip
    run_step(conn, dag, "gold.fact_usage_events", batch=B2)
    facts = """
        event_id | account_id | event_type | event_ts            | event_date | quantity | feature | dwh_batch_id
        e1       | ACC-1      | api_call   | 2026-01-05 10:00:00 | 2026-01-05 | 7        | sync    | BATCH000002
        e2       | ACC-2      | login      | 2026-01-05 11:00:00 | 2026-01-05 | 1        |         | BATCH000001
        e3       | ACC-2      | api_call   | 2026-01-06 09:00:00 | 2026-01-06 | 2        |         | BATCH000002
    """  # fmt: skip
    links = """
        event_id | account_id | dim_account | dwh_batch_id
        e1       | ACC-1      | ACC-1       | BATCH000002
        e2       | ACC-2      | ACC-2       | BATCH000001   # linked late, by B2
        e3       | ACC-2      | ACC-2       | BATCH000002
    """  # fmt: skip
    expect(conn, "gold_client2.fact_usage_events", facts, ignore=["event_key", "account_key"])
    expect(conn, EVENT_LINKS, links)

    # again(): each re-run below must run its statements, whatever the skip check finds.
    again(conn, "fact_usage_events")
    run_step(conn, dag, "gold.fact_usage_events", batch=B1)  # older: e1 stays as B2 wrote it
    expect(conn, "gold_client2.fact_usage_events", facts, ignore=["event_key", "account_key"])
    expect(conn, EVENT_LINKS, links)


def test_a_rerun_rewrites_only_the_usage_events_that_changed(conn, client2, client_dags) -> None:
    """Running a batch again leaves its unchanged events alone (not rewritten) and
    overwrites the ones a corrected file changed (the same batch may overwrite itself)."""
    dag = client_dags["client2"]
    events = """
        event_id | account_id | event_type | event_ts            | event_date | quantity
        e1       | ACC-1      | api_call   | 2026-01-05 10:00:00 | 2026-01-05 | 5
        e2       | ACC-1      | api_call   | 2026-01-05 11:00:00 | 2026-01-05 | {e2}
    """
    given(conn, "silver_client2.app_usage_events", events.format(e2=1))
    run_step(conn, dag, "gold.fact_usage_events")
    written = updated_at(conn, "fact_usage_events", "event_id")
    redeliver(conn, "app_usage_events", B1, events.format(e2=4))  # e2 corrected, e1 the same
    again(conn, "fact_usage_events")
    run_step(conn, dag, "gold.fact_usage_events")

    expect(conn, "gold_client2.fact_usage_events", """
        event_id | account_id | event_type | event_ts            | event_date | quantity | feature | dwh_batch_id
        e1       | ACC-1      | api_call   | 2026-01-05 10:00:00 | 2026-01-05 | 5        |         | BATCH000001
        e2       | ACC-1      | api_call   | 2026-01-05 11:00:00 | 2026-01-05 | 4        |         | BATCH000001
    """, ignore=["event_key", "account_key"])  # fmt: skip
    now = updated_at(conn, "fact_usage_events", "event_id")
    assert now["e1"] == written["e1"]  # unchanged: left alone
    assert now["e2"] > written["e2"]  # changed: rewritten


# ------------------------------------------------------------------ materialized views
def given_star(conn) -> None:
    """Four accounts (keys 1-4), two plans (keys 1-2), ten invoices, five usage events."""
    given(conn, "gold_client2.dim_accounts", """
        account_id | company_name | country_code | segment    | is_active | dwh_batch_id
        ACC-1      | Acme         | DE           | SMB        | true      | BATCH000001
        ACC-2      | Beta         | US           | Enterprise | true      | BATCH000001
        ACC-3      | Gamma        |              | Unknown    | false     | BATCH000001
        ACC-4      | Delta        | FR           | Mid-Market |           | BATCH000001
    """)  # fmt: skip
    given(conn, "gold_client2.dim_plans", """
        plan_code | tier    | dwh_batch_id
        PRO       | growth  | BATCH000001
        BASIC     | starter | BATCH000001
    """)  # fmt: skip
    assert keys(conn, "dim_accounts", "account_id", "account_key") == {
        "ACC-1": 1,
        "ACC-2": 2,
        "ACC-3": 3,
        "ACC-4": 4,
    }
    assert keys(conn, "dim_plans", "plan_code", "plan_key") == {"PRO": 1, "BASIC": 2}
    given(conn, "gold_client2.fact_invoices", """
        invoice_no | account_key | plan_key | account_id | plan_code | invoice_date | seats | amount | currency | status  | dwh_batch_id
        INV-1      | 1           | 1        | ACC-1      | PRO       | 2026-01-05   | 10    | 100.00 | USD      | paid    | BATCH000001
        INV-2      | 2           | 1        | ACC-2      | PRO       | 2026-01-20   | 5     | 50.00  | USD      | open    | BATCH000001
        INV-3      | 1           | 1        | ACC-1      | PRO       | 2026-01-31   |       | 30.00  | USD      | overdue | BATCH000001   # ACC-1 again
        INV-4      |             | 1        | ACC-9      | PRO       | 2026-01-10   | 10    | 100.00 | EUR      | paid    | BATCH000001   # other currency
        INV-5      | 2           | 1        | ACC-2      | PRO       | 2026-01-15   | 5     | 50.00  | USD      | void    | BATCH000001   # void
        INV-6      | 2           | 2        | ACC-2      | BASIC     | 2026-02-01   | 1     | 20.00  | USD      | unknown | BATCH000001   # not paid, not open
        INV-7      |             |          | ACC-9      | GOLD      | 2026-02-02   | 2     | 40.00  | USD      | open    | BATCH000001   # plan not in dim
        INV-8      | 3           |          | ACC-3      |           | 2026-02-03   | 3     | 15.00  | USD      | paid    | BATCH000001   # no plan
        INV-9      | 3           | 2        | ACC-3      | BASIC     | 2026-03-01   | 1     | 25.00  | EUR      | void    | BATCH000001   # void, alone
        INV-10     | 2           | 2        | ACC-2      | BASIC     | 2026-03-15   |       | 12.00  | USD      | paid    | BATCH000001   # no seats
    """)  # fmt: skip
    given(conn, "gold_client2.fact_usage_events", """
        event_id | account_key | account_id | event_type | event_ts            | event_date | quantity | dwh_batch_id
        e1       | 1           | ACC-1      | api_call   | 2026-01-05 09:00:00 | 2026-01-05 | 10       | BATCH000001
        e2       | 1           | ACC-1      | api_call   | 2026-01-05 17:00:00 | 2026-01-05 | 5        | BATCH000001   # same day
        e3       | 1           | ACC-1      | login      | 2026-01-07 08:00:00 | 2026-01-07 | 4        | BATCH000001   # no api call
        e4       | 2           | ACC-2      | login      | 2026-01-06 10:00:00 | 2026-01-06 | 3        | BATCH000001
        e5       |             | ACC-9      | api_call   | 2026-01-06 11:00:00 | 2026-01-06 | 99       | BATCH000001   # unknown account
    """)  # fmt: skip


def test_monthly_revenue_is_summed_per_month_plan_and_currency(conn, client2, client_dags) -> None:
    """Per invoice month, plan (its code when it is not in dim_plans, 'UNKNOWN' when the
    invoice has none; the tier from dim_plans) and currency, void invoices left out:
    invoices, distinct accounts billed (known or not), seats, billed amount, paid amount
    and outstanding amount (open or overdue), 0 when there is none."""
    given_star(conn)

    run_step(conn, client_dags["client2"], "refresh_views.mv_monthly_revenue")

    # Jan PRO USD: INV-1, INV-2, INV-3 (INV-5 void); accounts ACC-1, ACC-2; seats 10+5+NULL;
    # billed 100+50+30; paid INV-1 100; outstanding INV-2 50 + INV-3 30.
    # Feb BASIC USD: INV-6, status unknown: billed, but neither paid nor outstanding.
    # Mar: INV-9 is void (no BASIC EUR row); INV-10 has no seats (sum of none: NULL).
    expect(conn, "gold_client2.mv_monthly_revenue", """
        revenue_month | plan_code | tier    | currency | invoice_count | billed_accounts | seats | billed_amount | paid_amount | outstanding_amount
        2026-01-01    | PRO       | growth  | USD      | 3             | 2               | 15    | 180.00        | 100.00      | 80.00
        2026-01-01    | PRO       | growth  | EUR      | 1             | 1               | 10    | 100.00        | 100.00      | 0
        2026-02-01    | BASIC     | starter | USD      | 1             | 1               | 1     | 20.00         | 0           | 0
        2026-02-01    | GOLD      |         | USD      | 1             | 1               | 2     | 40.00         | 0           | 40.00
        2026-02-01    | UNKNOWN   |         | USD      | 1             | 1               | 3     | 15.00         | 15.00       | 0
        2026-03-01    | BASIC     | starter | USD      | 1             | 1               |       | 12.00         | 12.00       | 0
    """)  # fmt: skip


def test_account_usage_summary_has_every_account_with_usage_and_billing(conn, client2, client_dags) -> None:
    """One row per account, zeros (and no dates) when it has no events or invoices:
    events, API calls (the quantity of api_call events), distinct active days, first and
    last event; invoices that are not void, their billed amount, outstanding amount (open
    or overdue) and latest date. Facts without a known account are in no row."""
    given_star(conn)

    run_step(conn, client_dags["client2"], "refresh_views.mv_account_usage_summary")

    # ACC-1: events e1-e3, api calls 10+5, days 01-05 and 01-07; invoices INV-1, INV-3:
    #   100+30 billed, 30 outstanding (INV-3 overdue), latest 2026-01-31.
    # ACC-2: e4 (a login: 0 api calls); INV-2, INV-6, INV-10 (INV-5 void): 50+20+12 billed,
    #   50 outstanding (INV-2 open), latest 2026-03-15.
    # ACC-3: no events; INV-8 only (INV-9, later, is void): 15 billed, latest 2026-02-03.
    # ACC-4: nothing at all. e5, INV-4 and INV-7 have no account key: in no row.
    expect(conn, "gold_client2.mv_account_usage_summary", """
        account_key | account_id | company_name | segment    | country_code | is_active | event_count | api_calls | active_days | first_event_at      | last_event_at       | invoice_count | billed_amount | outstanding_amount | last_invoice_date
        1           | ACC-1      | Acme         | SMB        | DE           | true      | 3           | 15        | 2           | 2026-01-05 09:00:00 | 2026-01-07 08:00:00 | 2             | 130.00        | 30.00              | 2026-01-31
        2           | ACC-2      | Beta         | Enterprise | US           | true      | 1           | 0         | 1           | 2026-01-06 10:00:00 | 2026-01-06 10:00:00 | 3             | 82.00         | 50.00              | 2026-03-15
        3           | ACC-3      | Gamma        | Unknown    |              | false     | 0           | 0         | 0           |                     |                     | 1             | 15.00         | 0                  | 2026-02-03
        4           | ACC-4      | Delta        | Mid-Market | FR           |           | 0           | 0         | 0           |                     |                     | 0             | 0             | 0                  |
    """)  # fmt: skip
