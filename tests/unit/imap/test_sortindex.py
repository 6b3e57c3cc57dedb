"""The keys SORT and THREAD keep per folder state (mra/imap/sortindex.py), and THREAD's step 1
continued (threads.Linked): whatever was kept and however it was updated, the answer is the
one computed from the fields alone (sorting.sort_uids, threads.references), which the Dovecot
comparison tests (tests/interop/test_imap_dovecot_sort.py) hold to Dovecot's."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

import pytest

from mra.imap import sortindex, sorting, threads
from mra.imap.sortfields import SortFields
from mra.imap.sortindex import FolderKeys

SUBJECTS = ["", "a", "b", "B", "c d", "zz"]
PEOPLE = ["", "ann", "bob", "cy"]


def _record(rng: random.Random, uid: int, ids: list[str]) -> SortFields:
    """A message with ties everywhere: few subjects, dates, sizes and people; ids that repeat,
    references to earlier and later messages and to ids no message has."""
    own = f"m{rng.randrange(uid + 3)}@x" if rng.random() < 0.9 else ""
    ids.append(own)
    refs = tuple(rng.choice(ids) or f"n{rng.randrange(5)}@x" for _ in range(rng.randrange(4)))
    if rng.random() < 0.1:
        refs += (f"m{uid + rng.randrange(1, 20)}@x",)  # a message still to come
    return SortFields(
        uid=uid,
        arrival=float(rng.randrange(50)) + rng.random(),
        date=None if rng.random() < 0.2 else float(rng.randrange(-5, 50)),
        size=rng.randrange(5),
        subject=rng.choice(SUBJECTS),
        from_=rng.choice(PEOPLE),
        from_display=rng.choice(PEOPLE),
        to=rng.choice(PEOPLE),
        to_display=rng.choice(PEOPLE),
        cc=rng.choice(PEOPLE),
        message_id=own,
        in_reply_to=rng.choice(ids) if rng.random() < 0.3 else "",
        references=refs,
        preview=None,
        reply=rng.random() < 0.4,
    )


def _folder(seed: int, n: int) -> list[SortFields]:
    rng = random.Random(seed)
    ids: list[str] = []
    uids = sorted(rng.sample(range(1, 3 * n), n))
    return [_record(rng, uid, ids) for uid in uids]


def _sort(keys: FolderKeys, uids: list[int], program: list[tuple[str, bool]]) -> list[int]:
    """keys.sort's order, its places (when given) checked against `uids`."""
    order, places = keys.sort(uids, program)
    if places is not None:
        place = {u: n for n, u in enumerate(uids, 1)}
        assert places == [place[u] for u in order]
    return order


def _program(rng: random.Random) -> list[tuple[str, bool]]:
    names = rng.sample(sorted(sorting.KEYS), rng.randint(1, 3))
    return [(name, rng.random() < 0.4) for name in names]


@pytest.mark.parametrize("seed", range(6))
def test_sort_from_the_keys_is_the_sort_of_the_fields(seed: int) -> None:
    """Orders made at once, then updated message by message (bisect) and by a batch too big
    to insert (made again): every program on every subset answers as sort_uids."""
    rng = random.Random(seed)
    records = _folder(seed, 400)
    keys = FolderKeys(1)
    keys.add(records[:200])
    for f in records[200:]:  # one at a time, as deliveries come
        for _ in range(2):
            program = _program(rng)
            live = [r for r in records if r.uid in keys.records]
            subset = [r for r in live if rng.random() < 0.7] if rng.random() < 0.5 else live
            uids = [r.uid for r in subset]
            assert _sort(keys, uids, program) == sorting.sort_uids(subset, program), program
        keys.add([f])
    big = _folder(seed + 100, sortindex.INSERT_LIMIT + 10)
    between = [r for r in big if r.uid not in keys.records and r.uid < records[-1].uid][:5]
    known = list(records)
    for f in between:  # older UIDs (a record computed late): the others' places change
        keys.add([f])
        known = sorted([*known, f], key=lambda r: r.uid)
        uids = [r.uid for r in known]
        assert _sort(keys, uids, [("FROM", False)]) == sorting.sort_uids(known, [("FROM", False)])
    more = [r for r in big if r.uid not in keys.records][: sortindex.INSERT_LIMIT + 1]
    keys.add(more)
    everything = sorted([*known, *more], key=lambda r: r.uid)
    for name in sorting.KEYS:
        for reverse in (False, True):
            uids = [r.uid for r in everything]
            expected = sorting.sort_uids(everything, [(name, reverse)])
            assert _sort(keys, uids, [(name, reverse)]) == expected


@pytest.mark.parametrize("seed", range(3))
def test_sort_after_messages_are_forgotten(seed: int) -> None:
    """Expunged messages leave every order and the places of the others move down: one, then
    several at once, then most of them (the orders made again)."""
    rng = random.Random(seed)
    records = _folder(seed, 600)
    keys = FolderKeys(1)
    keys.add(records)
    for name in sorting.KEYS:
        _sort(keys, [r.uid for r in records], [(name, False)])  # every order made
    for count in (1, 1, 7, 30, sortindex.INSERT_LIMIT + 1):
        gone = {r.uid for r in rng.sample(records, min(count, len(records) - 1))}
        keys.forget([*gone, 10**7])
        records = [r for r in records if r.uid not in gone]
        uids = [r.uid for r in records]
        for name in sorting.KEYS:
            program = [(name, False)]
            assert _sort(keys, uids, program) == sorting.sort_uids(records, program)
            program = [(name, True), ("SIZE", False)]
            assert _sort(keys, uids, program) == sorting.sort_uids(records, program)


def test_sort_leaves_out_messages_without_a_record() -> None:
    records = _folder(7, 50)
    keys = FolderKeys(1)
    keys.add(records)
    asked = [r.uid for r in records] + [10**6]
    assert _sort(keys, asked, [("DATE", False)]) == sorting.sort_uids(records, [("DATE", False)])
    assert 10**6 not in _sort(keys, asked, [("FROM", True), ("SIZE", False)])


def test_attack_sort_keys_a_flood_of_new_messages_is_sorted_once() -> None:
    """Putting a new message in its place moves the rest of the order: thousands of new
    messages at once (a first SORT, a big import) would make that quadratic. Past
    INSERT_LIMIT the orders are dropped and made again by one sort when next used."""
    records = _folder(8, 3 * sortindex.INSERT_LIMIT)
    keys = FolderKeys(1)
    keys.add(records[:10])
    _sort(keys, [r.uid for r in records[:10]], [("SUBJECT", False)])
    inserted: list[int] = []
    real = sortindex._Key.insert

    def counting(self: sortindex._Key, uid: int) -> None:
        inserted.append(uid)
        real(self, uid)

    sortindex._Key.insert = counting  # type: ignore[method-assign]
    try:
        keys.add(records[10:])
    finally:
        sortindex._Key.insert = real  # type: ignore[method-assign]
    assert inserted == []
    uids = [r.uid for r in records]
    assert _sort(keys, uids, [("SUBJECT", False)]) == sorting.sort_uids(
        records, [("SUBJECT", False)]
    )


def _answer(tree: threads.Thread) -> bytes:
    return threads.write(tree, int)


@pytest.mark.parametrize("seed", range(8))
def test_linked_continued_is_linked_at_once(seed: int) -> None:
    """Step 1 taken in parts (messages appended since) is step 1 over all of them, and a
    finish leaves the links as they were (finished twice: the same answer)."""
    rng = random.Random(seed)
    records = _folder(seed, 300)
    cuts = sorted(rng.sample(range(1, len(records)), 4))
    linked = threads.Linked()
    start = 0
    for cut in [*cuts, len(records)]:
        linked.add(records[start:cut])
        start = cut
        for refs in (False, True):
            first = _answer(threads.finish(linked, refs))
            assert first == _answer(threads.references(records[:cut], refs))
            assert _answer(threads.finish(linked, refs)) == first


def test_thread_from_the_keys_continues_after_new_messages_only() -> None:
    """THREAD of the same messages plus newer ones links only the new ones, an expunge takes
    one out; every answer is the one of the fields alone."""
    records = _folder(9, 200)
    records[10] = dataclasses.replace(records[10], message_id="alone@x", references=())
    keys = FolderKeys(1)
    keys.add(records)
    uids = [r.uid for r in records]
    expunged = uids[:10] + uids[11:]
    expected = [
        _answer(threads.references(records[:150])),
        _answer(threads.references(records[:150], refs=True)),
        _answer(threads.references(records[:150])),
        _answer(threads.references(records)),
        _answer(threads.references(records[:10] + records[11:])),
        _answer(threads.orderedsubject(records)),
    ]
    linked_counts: list[int] = []
    real = threads.Linked.add

    def counting(self: threads.Linked, fields: Sequence[SortFields]) -> None:
        linked_counts.append(len(fields))
        real(self, fields)

    threads.Linked.add = counting  # type: ignore[method-assign]
    try:
        got = [
            keys.thread(uids[:150], "REFERENCES"),
            keys.thread(uids[:150], "REFS"),
            keys.thread(uids[:150], "REFERENCES"),
            keys.thread(uids, "REFERENCES"),  # 50 appended
            keys.thread(expunged, "REFERENCES"),  # one expunged
            keys.thread(uids, "ORDEREDSUBJECT"),
        ]
    finally:
        threads.Linked.add = real  # type: ignore[method-assign]
    assert [_answer(tree) for tree in got] == expected
    # The expunged message named no other and was named by none: taken out in place.
    assert linked_counts == [150, 0, 0, 50, 0]


def test_thread_many_roots_of_one_subject_under_one_dummy() -> None:
    """50,000 threads of one subject, none a reply: step 5 puts them all under one dummy,
    each in one step (at the head of the dummy's children, ordered once at the end)."""
    n = 50_000
    fields = [
        SortFields(u, float(n - u), None, 1, "s", "", "", "", "", "", f"{u}@x", "", (), None)
        for u in range(1, n + 1)
    ]
    answer = threads.write(threads.references(fields), int)
    assert answer == b"* THREAD (" + b"".join(b"(%d)" % u for u in range(n, 0, -1)) + b")"


def _mailing_list(seed: int, n: int) -> list[SortFields]:
    """Replies as mail clients write them: References is the parent's References and the
    parent's id, so a new reply names only messages known and linked already; some start a
    thread, some share a subject, dates tie and go backwards."""
    rng = random.Random(seed)
    out: list[SortFields] = []
    for uid in range(1, n + 1):
        refs: tuple[str, ...] = ()
        subject = f"t{rng.randrange(n // 4)}"
        reply = False
        if out and rng.random() < 0.7:
            up = rng.choice(out)
            refs = (*up.references, up.message_id)
            subject, reply = up.subject, True
        out.append(
            SortFields(
                uid, float(rng.randrange(n)), float(rng.randrange(n)), 1, subject,
                "", "", "", "", "", f"{uid}@x", "", refs, None, reply,
            )
        )  # fmt: skip
    return out


@pytest.mark.parametrize("seed", range(4))
def test_thread_new_replies_are_put_in_place(seed: int) -> None:
    """A reply whose references are all known and linked (what a mail client sends) is put
    into the prepared chains in place, not prepared again: the answer is the same as that
    of step 1 and steps 2-5 over all of them."""
    records = _mailing_list(seed, 300)
    linked = threads.Linked()
    linked.add(records[:100])
    threads.finish(linked)
    prepared = linked.prepared
    assert prepared is not None
    for end in range(101, len(records) + 1):
        linked.add(records[end - 1 : end])
        assert linked.prepared is prepared  # still the one made first
        for refs in (False, True):
            expected = _answer(threads.references(records[:end], refs))
            assert _answer(threads.finish(linked, refs)) == expected
    strange = SortFields(
        999, 1.0, 1.0, 1, "x", "", "", "", "", "", "new@x", "", ("unknown@x", "1@x"), None
    )  # names an id no message has, and links it: prepared again
    linked.add([strange])
    assert linked.prepared is None
    expected = _answer(threads.references([*records, strange]))
    assert _answer(threads.finish(linked)) == expected


@pytest.mark.parametrize("seed", range(6))
def test_thread_messages_taken_out_as_if_never_linked(seed: int) -> None:
    """Linked.remove takes a message out only when step 1 without it makes the same links:
    wherever it says so, the answers (and those after more messages come) are step 1's over
    the others; where it refuses, nothing changed. Both kinds of folder: replies as clients
    write them (most can be taken out) and ids named every which way (few can)."""
    rng = random.Random(seed)
    for records in (_mailing_list(seed, 300), _folder(seed, 300)):
        linked = threads.Linked()
        linked.add(records[:250])
        threads.finish(linked)
        left = records[:250]
        taken = 0
        for _ in range(40):
            victim = rng.choice(left)
            before = _answer(threads.finish(linked))
            if linked.remove([victim.uid]):
                taken += 1
                left = [f for f in left if f is not victim]
                for refs in (False, True):
                    expected = _answer(threads.references(left, refs))
                    assert _answer(threads.finish(linked, refs)) == expected
            else:
                assert _answer(threads.finish(linked)) == before
        linked.add(records[250:])
        left += records[250:]
        for refs in (False, True):
            assert _answer(threads.finish(linked, refs)) == _answer(threads.references(left, refs))
        if records[0].subject.startswith("t"):  # the mailing list
            assert taken > 5


@pytest.mark.parametrize("kept", [sortindex.KEYS_KEPT, 1, 0])
def test_attack_sort_keys_kept_are_bounded(kept: int) -> None:
    """Each key's order costs memory a message: a client sorting by every key in turn makes
    the folder keep `[index] sort_keys` of them, the ones used last, and the answers stay
    right (with 0, none is kept and every SORT sorts)."""
    records = _folder(10, 300)
    keys = FolderKeys(1, kept)
    keys.add(records)
    uids = [r.uid for r in records]
    for name in [*sorting.KEYS, "DATE", *sorting.KEYS]:
        for reverse in (False, True):
            program = [(name, reverse)]
            assert _sort(keys, uids, program) == sorting.sort_uids(records, program)
        assert len(keys._keys) <= kept
        if kept:
            assert list(keys._keys)[-1] == name
