"""How the writer cuts a decision into transactions (pure: nothing is sent)."""

from __future__ import annotations

from shared.revenue import writer
from shared.revenue.intents import BookCharge, Decision, ExpectHead, MarkEvent, SaveRoot, ScopeWrites
from shared.revenue.models import ChargeFacts, CustomerRecord
from shared.revenue.records import CustomerRoot, PaymentJoin, new_ledger_record
from shared.revenue.resolve import Link

ROOT = CustomerRoot(CustomerRecord("cus_1", email="a@b.co"), True, Link("v1", (1, "ch_0"), 2), 5)


def charge(i: int) -> BookCharge:
    facts = ChargeFacts(f"ch_{i}", 1_790_000_000 + i, "usd", 100, 100, 0, True, "succeeded", "cus_1", None, None)
    return BookCharge(new_ledger_record(facts, "v1", 3), PaymentJoin())


def test_a_scope_whose_checks_alone_exceed_a_transaction_is_spread_over_a_chain() -> None:
    # Given a customer decision that read 150 email heads and books 30 charges
    checks = [ExpectHead(f"e{i}@b.co", 1) for i in range(150)]
    scope = ScopeWrites(root=SaveRoot(ROOT, ROOT.record, True, ROOT.link), first=list(checks))
    scope.units = [(charge(i),) for i in range(30)]
    # When it is planned
    txs = writer.plan("p1", Decision(scopes=[scope], last=[MarkEvent("evt_1")]))
    # Then every transaction holds at most 100 items and writes the customer item (a version chain)
    assert len(txs) >= 3
    assert all(len(tx) <= writer.MAX_ITEMS for tx in txs)
    assert all("cus_1" in tx.roots for tx in txs)
    assert [tx.roots["cus_1"].step for tx in txs] == list(range(len(txs)))
    assert [tx.roots["cus_1"].dirty for tx in txs] == [True] * (len(txs) - 1) + [False]
