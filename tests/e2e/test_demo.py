"""`make demo` at a small size against the real local stack: every step through the HTTP API and
the emulator's Stripe API, and what it prints is what the API answers."""

from __future__ import annotations

import io

from local.demo.story import TIER_NAMES, money, run_demo
from local.demo.world import Api, DemoSize
from tests.e2e.conftest import JWT_SECRET, Stack


def test_the_demo_tells_its_story_with_the_apis_numbers(stack: Stack) -> None:
    api = Api(stack.base_url, "demo", JWT_SECRET)
    out = io.StringIO()
    # Given a small demo account (300 charges), when the demo runs its whole story
    report = run_demo(api, stack.control, DemoSize(300), out=out)
    printed = out.getvalue()
    world = report.world
    # Then the account was seeded as asked: subscriptions of every kind the backfill lists
    assert world.seeded["customers"] == 60
    assert world.seeded["subscriptions"] == 9
    assert 250 <= world.charges <= 400
    # the visitors are the API's, named as the sessions name them, half of them with an email
    first = world.visitors[0]
    shown = api.ok("GET", api.project_path(f"/visitors/{first.visitor_id}"))
    assert (shown["acquisition"]["source"], shown["email"]) == (first.source, first.email)
    # the backfill imported every charge of the history, once
    backfill = api.ok("GET", api.project_path("/integrations/stripe"))["backfill"]
    assert (backfill["status"], backfill["charges_imported"]) == ("completed", world.charges)
    assert f"{world.charges:,} charges in" in printed
    # the live payments landed where the rules say, and the refund came off the Checkout payment
    tiers = {r.what: r.tier for r in report.live}
    assert tiers == {"checkout": 1, "repeat": 3, "identified": 2, "renewal": 3, "refund": 1}
    checkout = api.ok("GET", api.project_path("/visitors/visitor-live-producthunt"))
    assert checkout["lifetime_revenue"] == {"usd": 12_000 - 4_000}
    identified = api.ok("GET", api.project_path("/visitors/visitor-live-twitter"))
    assert identified["lifetime_revenue"] == {"jpy": 4_800}
    # And the tables printed are the API's report, which adds up
    revenue = api.ok("GET", api.project_path("/revenue"))
    assert revenue == report.revenue
    for currency, total in revenue["totals"].items():
        parts = [int(r["revenue"].get(currency, 0)) for r in revenue["by_source"]]
        assert sum(parts) + int(revenue["unattributed"]["revenue"].get(currency, 0)) == total
        tiers_sum = sum(int(revenue["by_tier"][t].get(currency, 0)) for t in ("1", "2", "3"))
        assert tiers_sum + int(revenue["unattributed"]["revenue"].get(currency, 0)) == total
    lines = printed.splitlines()
    for row in revenue["by_source"]:
        (line,) = [line for line in lines if line.split()[:1] == [row["source"]]]
        assert line.split()[1:3] == [f"{row['payments']:,}", f"{row['visitors']:,}"]
        for currency, amount in row["revenue"].items():
            assert money(int(amount), currency) in line
    (total_line,) = [line for line in lines if line.split()[:1] == ["total"]]
    for currency, amount in revenue["totals"].items():
        assert money(int(amount), currency) in total_line
    for tier, name in TIER_NAMES.items():
        (line,) = [line for line in lines if line.strip().startswith(name)]
        for currency, amount in revenue["by_tier"][tier].items():
            assert money(int(amount), currency) in line
    assert "timings:" in lines[-1]
