"""Visitor rules (shared.visitors.service) over an in-memory store: no AWS, no network."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import NotFound, ServiceUnavailable, StaleUpdate
from shared.visitors.models import (
    Acquisition,
    DeleteHead,
    DeleteMember,
    EmailHead,
    EmailMember,
    PutHead,
    PutMember,
    TimelineEvent,
    TimelinePage,
    TimelineQuery,
    Visitor,
    VisitorBody,
    VisitorChanges,
    VisitorWrite,
)
from shared.visitors.service import MAX_ATTEMPTS, VisitorService, joining, leaving

P = "proj-1"
T0 = datetime(2026, 11, 27, 14, 0, 0, 123456, tzinfo=UTC)
BOOKING_FIELDS = ("lifetime_revenue", "plan", "stripe_customer_ids")


@dataclass
class FakeVisitorStore:
    """The VisitorStore port in memory, with the same all-or-nothing, version-conditioned save."""

    profiles: dict[tuple[str, str], Visitor] = field(default_factory=dict)
    heads: dict[tuple[str, str], EmailHead] = field(default_factory=dict)
    members: dict[tuple[str, str], set[EmailMember]] = field(default_factory=dict)
    events: dict[tuple[str, str], list[tuple[str, TimelineEvent]]] = field(default_factory=dict)
    before_save: list[Callable[[], object]] = field(default_factory=list)  # run (once each) before a save
    saves: int = 0

    def get(self, project_id: str, visitor_id: str, *, consistent: bool = False) -> Visitor | None:
        return self.profiles.get((project_id, visitor_id))

    def exists(self, project_id: str, visitor_id: str) -> bool:
        return (project_id, visitor_id) in self.profiles

    def email_head(self, project_id: str, email_key: str) -> EmailHead | None:
        return self.heads.get((project_id, email_key))

    def first_members(self, project_id: str, email_key: str, limit: int) -> list[EmailMember]:
        return sorted(self.members.get((project_id, email_key), set()))[:limit]

    def save(self, write: VisitorWrite) -> None:
        if self.before_save:
            self.before_save.pop(0)()
        self.saves += 1
        new = write.visitor
        key = (new.project_id, new.visitor_id)
        current = self.profiles.get(key)
        if (current.version if current else None) != write.expected_version:
            raise StaleUpdate("profile")
        for w in write.index:
            if isinstance(w, PutHead | DeleteHead):
                head = self.heads.get((new.project_id, w.email_key))
                if (head.version if head else None) != w.expected_version:
                    raise StaleUpdate("head")
        # Only the given fields (and what a PUT always sets); booking's fields stay as stored.
        stored = current or Visitor(new.project_id, new.visitor_id, created_at=new.created_at)
        given = {name: getattr(new, name) for name in write.fields}
        if "email" in write.fields:
            given.update(email_key=new.email_key, email_set_at=new.email_set_at)
        if write.pending_changed:
            given["pending"] = new.pending
        self.profiles[key] = replace(stored, **given, updated_at=new.updated_at, version=new.version)
        for w in write.index:
            slot = (new.project_id, w.email_key)
            match w:
                case PutMember(_, member):
                    self.members.setdefault(slot, set()).add(member)
                case DeleteMember(_, member):
                    self.members.get(slot, set()).discard(member)
                case PutHead(_, head, _):
                    self.heads[slot] = head
                case DeleteHead():
                    del self.heads[slot]

    def timeline(self, project_id: str, visitor_id: str, limit: int, after_sk: str | None) -> TimelinePage:
        items = sorted(self.events.get((project_id, visitor_id), []), reverse=True)
        if after_sk:
            items = [i for i in items if i[0] < after_sk]
        page = items[:limit]
        return TimelinePage(tuple(e for _, e in page), page[-1][0] if len(items) > limit else None)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def store() -> FakeVisitorStore:
    return FakeVisitorStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: FakeVisitorStore, clock: Clock) -> VisitorService:
    return VisitorService(store, clock)


def body(**fields: object) -> VisitorChanges:
    """Changes as the handler makes them: from the API's request model."""
    return VisitorBody.model_validate(fields).to_changes()


def assert_email_index_exact(store: FakeVisitorStore) -> None:
    """Members are exactly the visitors whose current email it is; the head is the earliest of them."""
    expected: dict[tuple[str, str], set[EmailMember]] = {}
    for (project, visitor_id), v in store.profiles.items():
        if v.email_key:
            assert v.email_set_at
            expected.setdefault((project, v.email_key), set()).add(EmailMember(v.email_set_at, visitor_id))
    assert {k: m for k, m in store.members.items() if m} == expected
    assert {k: h.member for k, h in store.heads.items()} == {k: min(m) for k, m in expected.items()}


# ---- creating and updating -----------------------------------------------------------------------


def test_a_new_visitor_is_created_with_the_given_fields(service: VisitorService, store: FakeVisitorStore) -> None:
    # Given no visitor
    # When the tracker identifies one
    saved = service.save(
        P,
        "v1",
        body(user_id="u1", name="Ann", acquisition={"source": "google"}, first_seen_at="2026-11-01T10:00:00+01:00"),
    )
    # Then it is created with those fields
    assert saved.created
    assert not saved.email_changed
    v = store.profiles[(P, "v1")]
    assert (v.user_id, v.name, v.first_seen_at) == ("u1", "Ann", "2026-11-01T09:00:00Z")
    assert v.acquisition == Acquisition(source="google")
    assert v.created_at == v.updated_at == "2026-11-27T14:00:00.123456Z"
    assert v.version == 1
    assert saved.visitor == replace(v)


def test_absent_fields_keep_their_values_and_null_removes(
    service: VisitorService, store: FakeVisitorStore, clock: Clock
) -> None:
    # Given a visitor with a user id, a name and an acquisition
    service.save(P, "v1", body(user_id="u1", name="Ann", acquisition={"source": "google"}))
    clock.tick()
    # When a PUT gives only a new name and a null acquisition
    saved = service.save(P, "v1", body(name="Ann B", acquisition=None))
    # Then the user id stays, the name is replaced, the acquisition removed
    v = store.profiles[(P, "v1")]
    assert (v.user_id, v.name, v.acquisition) == ("u1", "Ann B", None)
    assert not saved.created
    assert (v.created_at, v.updated_at) == ("2026-11-27T14:00:00.123456Z", "2026-11-27T14:00:01.123456Z")
    assert v.version == 2


def test_booking_fields_are_kept_and_returned(service: VisitorService, store: FakeVisitorStore) -> None:
    # Given a visitor the booking code credited
    service.save(P, "v1", body())
    store.profiles[(P, "v1")] = replace(
        store.profiles[(P, "v1")],
        lifetime_revenue={"usd": 12300},
        plan={"name": "Pro"},
        stripe_customer_ids=("cus_1",),
    )
    # When the tracker updates it
    saved = service.save(P, "v1", body(name="Ann"))
    # Then the revenue, plan and customers are still there, and in the result
    for v in (store.profiles[(P, "v1")], saved.visitor):
        assert (v.lifetime_revenue, v.plan, v.stripe_customer_ids) == ({"usd": 12300}, {"name": "Pro"}, ("cus_1",))


def test_get_and_timeline_of_an_unknown_visitor_are_not_found(service: VisitorService) -> None:
    with pytest.raises(NotFound):
        service.get(P, "nobody")
    with pytest.raises(NotFound):
        service.timeline(P, "nobody", TimelineQuery(50, None))


def test_timeline_reads_the_store_for_a_known_visitor(service: VisitorService, store: FakeVisitorStore) -> None:
    # Given a visitor with one event
    service.save(P, "v1", body())
    event = TimelineEvent("ch_1", "Charge Succeeded", "2026-11-27T14:00:00Z", 2500, "usd", 2500, "ch_1", 1)
    store.events[(P, "v1")] = [("T#001795000000#ch_1", event)]
    # When its timeline is read, Then the event is there
    assert service.timeline(P, "v1", TimelineQuery(50, None)) == TimelinePage((event,), None)


def test_projects_are_separate(service: VisitorService, store: FakeVisitorStore) -> None:
    # Given the same visitor id and email in two projects
    service.save("p1", "v1", body(email="a@x.com"))
    service.save("p2", "v1", body(email="a@x.com", name="Other"))
    # Then each project has its own visitor and its own email head
    assert store.profiles[("p1", "v1")].name is None
    assert set(store.heads) == {("p1", "a@x.com"), ("p2", "a@x.com")}


# ---- emails ---------------------------------------------------------------------------------------


def test_an_email_is_stored_trimmed_and_keyed_in_lower_case(service: VisitorService, store: FakeVisitorStore) -> None:
    # When a visitor identifies with a padded, mixed-case email
    saved = service.save(P, "v1", body(email="  Ann@Example.COM "))
    # Then it is stored trimmed, matched lower-case, set now, and the visitor heads that email
    v = store.profiles[(P, "v1")]
    assert (v.email, v.email_key, v.email_set_at) == (
        "Ann@Example.COM",
        "ann@example.com",
        "2026-11-27T14:00:00.123456Z",
    )
    assert saved.email_changed
    assert saved.created
    assert store.heads[(P, "ann@example.com")] == EmailHead("v1", "2026-11-27T14:00:00.123456Z", 1)
    assert_email_index_exact(store)


def test_the_same_email_again_keeps_the_time_it_was_set(
    service: VisitorService, store: FakeVisitorStore, clock: Clock
) -> None:
    # Given a visitor identified with an email
    service.save(P, "v1", body(email="ann@example.com"))
    head = store.heads[(P, "ann@example.com")]
    clock.tick(3600)
    # When the same email comes again, in another case
    saved = service.save(P, "v1", body(email="ANN@example.com"))
    # Then the display changes but the time it was set does not, and the index is untouched
    v = store.profiles[(P, "v1")]
    assert (v.email, v.email_set_at) == ("ANN@example.com", "2026-11-27T14:00:00.123456Z")
    assert not saved.email_changed
    assert store.heads[(P, "ann@example.com")] == head
    assert_email_index_exact(store)


def test_the_first_visitor_with_an_email_stays_first(
    service: VisitorService, store: FakeVisitorStore, clock: Clock
) -> None:
    # Given a visitor identified with an email
    service.save(P, "v1", body(email="ann@example.com"))
    clock.tick()
    # When the same person identifies later on another device (another case)
    saved = service.save(P, "v2", body(email="Ann@Example.com"))
    # Then the first visitor stays the head; both are members
    assert saved.email_changed
    assert store.heads[(P, "ann@example.com")].visitor_id == "v1"
    assert len(store.members[(P, "ann@example.com")]) == 2
    assert_email_index_exact(store)


def test_the_head_passes_to_the_next_visitor_when_the_first_changes_email(
    service: VisitorService, store: FakeVisitorStore, clock: Clock
) -> None:
    # Given three visitors identified with one email, in turn
    for visitor_id in ("v1", "v2", "v3"):
        service.save(P, visitor_id, body(email="ann@example.com"))
        clock.tick()
    # When the first changes its email
    saved = service.save(P, "v1", body(email="new@example.com"))
    # Then the second heads the old email and the first heads the new one
    assert saved.email_changed
    assert store.heads[(P, "ann@example.com")].member == EmailMember("2026-11-27T14:00:01.123456Z", "v2")
    assert store.heads[(P, "new@example.com")].visitor_id == "v1"
    assert_email_index_exact(store)


def test_removing_the_last_email_removes_the_head(
    service: VisitorService, store: FakeVisitorStore, clock: Clock
) -> None:
    # Given one visitor with an email
    service.save(P, "v1", body(email="ann@example.com"))
    clock.tick()
    # When the email is removed
    saved = service.save(P, "v1", body(email=None))
    # Then nothing is left of it in the index
    v = store.profiles[(P, "v1")]
    assert (v.email, v.email_key, v.email_set_at) == (None, None, None)
    assert not saved.email_changed
    assert store.heads == {}
    assert_email_index_exact(store)


def test_a_later_member_leaving_keeps_the_head(service: VisitorService, store: FakeVisitorStore, clock: Clock) -> None:
    # Given two visitors with one email
    service.save(P, "v1", body(email="ann@example.com"))
    clock.tick()
    service.save(P, "v2", body(email="ann@example.com"))
    # When the second drops it
    service.save(P, "v2", body(email=None))
    # Then the first still heads it (its version moved: the members changed)
    head = store.heads[(P, "ann@example.com")]
    assert (head.visitor_id, head.version) == ("v1", 3)
    assert_email_index_exact(store)


def test_an_email_back_after_a_change_is_set_again(
    service: VisitorService, store: FakeVisitorStore, clock: Clock
) -> None:
    # Given v1 then v2 with an email, and v1 moved to another email
    service.save(P, "v1", body(email="ann@example.com"))
    clock.tick()
    service.save(P, "v2", body(email="ann@example.com"))
    clock.tick()
    service.save(P, "v1", body(email="other@example.com"))
    clock.tick()
    # When v1 comes back to the first email
    service.save(P, "v1", body(email="ann@example.com"))
    # Then it is identified with it from now: v2 is first
    assert store.heads[(P, "ann@example.com")].visitor_id == "v2"
    assert (P, "other@example.com") not in store.heads
    assert_email_index_exact(store)


# ---- races --------------------------------------------------------------------------------------


def test_a_put_that_raced_another_is_decided_again(
    service: VisitorService, store: FakeVisitorStore, clock: Clock
) -> None:
    # Given v1 about to take an email while v2 takes it first, between v1's reads and its write
    def v2_first() -> None:
        service.save(P, "v2", body(email="ann@example.com"))
        clock.tick()

    store.before_save.append(v2_first)
    # When v1's PUT runs
    saved = service.save(P, "v1", body(email="ann@example.com"))
    # Then its first write failed on the head it read, the retry saw v2, and v2 stays first
    assert saved.email_changed
    assert store.saves == 3  # v1 (stale), v2, v1 again
    assert store.heads[(P, "ann@example.com")].visitor_id == "v2"
    assert_email_index_exact(store)


def test_a_concurrent_put_of_the_same_visitor_is_not_lost(service: VisitorService, store: FakeVisitorStore) -> None:
    # Given a visitor, and another PUT of it landing between this PUT's read and write
    service.save(P, "v1", body(name="Ann"))
    store.before_save.append(lambda: service.save(P, "v1", body(user_id="u1")))
    # When this PUT sets an email
    service.save(P, "v1", body(email="ann@example.com"))
    # Then both PUTs' fields are there
    v = store.profiles[(P, "v1")]
    assert (v.name, v.user_id, v.email) == ("Ann", "u1", "ann@example.com")
    assert v.version == 3  # create, the concurrent PUT, this one (its first try wrote nothing)
    assert_email_index_exact(store)


def test_giving_up_after_repeated_races_is_a_retryable_error(service: VisitorService, store: FakeVisitorStore) -> None:
    # Given a visitor that another writer changes before every attempt of this PUT
    service.save(P, "v1", body())
    counter = itertools.count()

    def other_writer() -> None:
        v = store.profiles[(P, "v1")]
        store.profiles[(P, "v1")] = replace(v, name=f"other-{next(counter)}", version=(v.version or 0) + 1)

    store.before_save.extend([other_writer] * MAX_ATTEMPTS)
    # When this PUT runs, Then it gives up with a 503 after MAX_ATTEMPTS tries
    with pytest.raises(ServiceUnavailable):
        service.save(P, "v1", body(name="mine"))
    assert store.profiles[(P, "v1")].name == f"other-{MAX_ATTEMPTS - 1}"


# ---- index decisions (pure) ---------------------------------------------------------------------


def test_joining_an_email_nobody_has_creates_its_head() -> None:
    member = EmailMember("2026-01-01T00:00:00.000000Z", "v1")
    assert joining("a@x", member, None) == (
        PutMember("a@x", member),
        PutHead("a@x", EmailHead("v1", member.set_at, 1), None),
    )


def test_joining_earlier_than_the_head_takes_it() -> None:
    # A clock behind the head's writer: the earlier time wins, whoever wrote last
    head = EmailHead("v2", "2026-01-02T00:00:00.000000Z", 4)
    member = EmailMember("2026-01-01T00:00:00.000000Z", "v1")
    assert joining("a@x", member, head)[1] == PutHead("a@x", EmailHead("v1", member.set_at, 5), 4)


def test_joining_later_than_the_head_bumps_its_version_only() -> None:
    head = EmailHead("v1", "2026-01-01T00:00:00.000000Z", 4)
    member = EmailMember("2026-01-02T00:00:00.000000Z", "v2")
    assert joining("a@x", member, head)[1] == PutHead("a@x", replace(head, version=5), 4)


def test_the_head_leaving_hands_over_to_the_earliest_other_member() -> None:
    me = EmailMember("2026-01-01T00:00:00.000000Z", "v1")
    other = EmailMember("2026-01-02T00:00:00.000000Z", "v2")
    head = EmailHead("v1", me.set_at, 2)
    assert leaving("a@x", me, head, [me, other]) == (
        DeleteMember("a@x", me),
        PutHead("a@x", EmailHead("v2", other.set_at, 3), 2),
    )


def test_the_last_member_leaving_deletes_the_head() -> None:
    me = EmailMember("2026-01-01T00:00:00.000000Z", "v1")
    assert leaving("a@x", me, EmailHead("v1", me.set_at, 2), [me]) == (DeleteMember("a@x", me), DeleteHead("a@x", 2))


def test_leaving_repairs_a_missing_head() -> None:
    me = EmailMember("2026-01-02T00:00:00.000000Z", "v1")
    other = EmailMember("2026-01-01T00:00:00.000000Z", "v2")
    assert leaving("a@x", me, None, [other, me])[1] == PutHead("a@x", EmailHead("v2", other.set_at, 1), None)


# ---- property: the index is exact after any sequence of PUTs, racing or not ---------------------

EMAILS = st.sampled_from(["ann@x.com", "ANN@x.com ", "bob@x.com", None])
PUTS = st.lists(
    st.tuples(st.sampled_from(["v1", "v2", "v3"]), EMAILS, st.booleans(), st.integers(0, 2)), min_size=1, max_size=25
)


@settings(max_examples=150, deadline=None)
@given(puts=PUTS)
def test_the_email_index_is_exact_after_any_puts(puts: list[tuple[str, str | None, bool, int]]) -> None:
    # Given any sequence of PUTs (some racing the next one, some in the same microsecond)
    store = FakeVisitorStore()
    clock = Clock()
    service = VisitorService(store, clock)
    pending = list(puts)
    while pending:
        visitor_id, email, race, ticks = pending.pop(0)
        if race and pending:
            other_id, other_email, _, _ = pending.pop(0)
            store.before_save.append(functools.partial(service.save, P, other_id, body(email=other_email)))
        # When each runs
        service.save(P, visitor_id, body(email=email))
        clock.tick(ticks)
        # Then members are exactly the current emails and each head is the earliest
        assert_email_index_exact(store)
