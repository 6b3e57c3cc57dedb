"""THREAD (RFC 5256 section 3): ORDEREDSUBJECT, REFERENCES, and REFS (Dovecot's, after
draft-ietf-morg-inthread-01), over the fields of mra/imap/sortfields.py, as Dovecot 2.3 builds
them (src/imap/cmd-thread.c, lib-storage/index/index-thread-links.c and -finish.c), so that
both servers give the same tree.

ORDEREDSUBJECT: the messages sorted by base subject, then sent date; each run of one subject
is a thread, its first message the parent of the others; threads in the order of their first
message's sent date.

REFERENCES, step by step (RFC 5256 section 4):

1. Every message's own id and its references (References, else the first id of In-Reply-To)
   become nodes; each reference is made the parent of the next one unless that one has a
   parent already or the link would close a loop; the last reference becomes the message's
   parent (a different parent it had is dropped). A Message-ID seen before, or none, gets a
   node of its own.
2. The roots are the nodes without a parent; 3. nodes that are no message (dummies) are
   dropped, their children moved up to the nearest message above (a dummy root keeps them,
   or, with only one, gives way to it); 4. siblings in order of sent date (the INTERNALDATE
   when there is none), then UID, and the roots likewise (a dummy by its first child);
5. roots whose base subject is the same are gathered: a dummy or a message that is not a
   reply takes the others as children; two of a kind get a new dummy above them.

REFS is step 1 and 4 only, the threads ordered by their latest message, which is what a
client showing conversations wants: the one that just got a reply comes last.

Everything grows with the folder: no recursion anywhere (a chain of 100,000 replies is a tree
100,000 deep), and step 1's loop test is a walk up from the new parent, which is short in
real mail; a walk longer than `WALK` switches the forest to a link/cut tree (linkcut.py), in
which every later link, cut and root costs O(log n) amortised, so that no crafted set of
messages makes the loop tests quadratic.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import compress, pairwise

from mra.imap.linkcut import LinkCut
from mra.imap.sortfields import SortFields

__all__ = ["ALGORITHMS", "Thread", "orderedsubject", "references", "write"]

ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES", "REFS")
WALK = 256
"""Steps of a loop test before the forest becomes a link/cut tree."""


def _sort_date(f: SortFields) -> int:
    """The sent date, else the INTERNALDATE (RFC 5256 2.2), to the second (time_t)."""
    return int(f.arrival // 1) if f.date is None else int(f.date)


@dataclass(slots=True)
class Thread:
    """A THREAD answer: nodes 1..n, `uid[node]` (0 for a dummy), the children of a node as a
    chain from `first[node]` along `next` (0 ends it), and the top-level nodes in order.
    Arrays of integers, not a list a node: nothing for the garbage collector to walk."""

    uid: list[int]
    first: list[int]
    next: list[int]
    roots: list[int]

    def children(self, node: int) -> list[int]:
        out = []
        kid = self.first[node]
        while kid:
            out.append(kid)
            kid = self.next[kid]
        return out


# ---------------------------------------------------------------------------------------------
# ORDEREDSUBJECT


def orderedsubject(fields: Sequence[SortFields]) -> Thread:
    """`fields` in UID order (the messages the search matched)."""
    dates = [_sort_date(f) for f in fields]
    subjects = [f.subject for f in fields]
    order = list(range(len(fields)))
    order.sort(key=dates.__getitem__)  # stable sorts: subject, then date, then UID
    order.sort(key=subjects.__getitem__)
    uid = [0] + [fields[i].uid for i in order]
    first = [0] * len(uid)
    after = [0] * len(uid)
    heads: list[tuple[int, int, int]] = []  # (date of the first message, its UID, node)
    prev: str | None = None
    for node, i in enumerate(order, 1):
        subject = subjects[i]
        if subject != prev:
            heads.append((dates[i], uid[node], node))
            prev = subject
        elif heads[-1][2] == node - 1:
            first[node - 1] = node  # the head's first child
        else:
            after[node - 1] = node  # the next of the head's children
    heads.sort()
    return Thread(uid, first, after, [n for _, _, n in heads])


# ---------------------------------------------------------------------------------------------
# REFERENCES and REFS


def references(fields: Sequence[SortFields], refs: bool = False) -> Thread:
    """`fields` in UID order (the messages the search matched); `refs` for THREAD=REFS."""
    linked = Linked()
    linked.add(fields)
    return finish(linked, refs)


def finish(linked: Linked, refs: bool = False) -> Thread:
    """Steps 2 to 5 (REFERENCES) or 4 (REFS) over the messages linked so far; `linked` is
    left as it was, so that it can be continued and finished again (sortindex.py)."""
    if linked.prepared is None:
        linked.prepared = _Prepared(linked.forest)
    done = _Finish(linked.forest, linked.subject, linked.prepared)
    return done.refs() if refs else done.references()


class Linked:
    """Step 1 over messages given in UID order, which can be continued with newer ones: the
    result of `add(a)` then `add(b)` is that of `add(a + b)`, step 1 taking one message after
    the other. This is what Dovecot keeps as its thread index (dovecot.index.thread).

    `prepared` (made by the first `finish`) is steps 2 and 3 as far as they depend on the
    links alone; a new message that only hangs below a node, or starts a thread, without
    changing any other link (a reply whose references are known and linked already, as most
    are) is put into it in place; any other drops it, to be made again."""

    __slots__ = ("claimed_twice", "forest", "node_of", "prepared", "subject")

    def __init__(self) -> None:
        self.forest = _Forest(1)
        self.subject: dict[int, SortFields] = {}  # a message's node -> its fields
        self.node_of: dict[int, int] = {}  # a message's UID -> its node
        self.claimed_twice: set[int] = set()  # nodes whose Message-ID a later message had too
        self.prepared: _Prepared | None = None

    def add(self, fields: Sequence[SortFields]) -> None:
        forest = self.forest
        count = len(forest.parent)
        # Every node is a message or an id it names: room for all of them at once.
        forest.grow(len(fields) + sum(len(f.references) or bool(f.in_reply_to) for f in fields))
        parent, uid, has_child, ids = forest.parent, forest.uid, forest.has_child, forest.ids
        date, named, quiet = forest.date, forest.named, forest.quiet
        subject, node_of = self.subject, self.node_of
        link = forest.link
        prepared = self.prepared
        for f in fields:
            msgid = f.message_id
            node = ids.get(msgid, 0) if msgid else 0
            fresh = not node or bool(uid[node])
            if not node:
                node = count
                count += 1
                if msgid:
                    ids[msgid] = node
            elif uid[node]:  # a Message-ID seen before: the first message keeps it
                self.claimed_twice.add(node)
                node = count
                count += 1
            uid[node] = f.uid
            date[node] = int(f.arrival // 1) if f.date is None else int(f.date)  # _sort_date
            subject[node] = f
            node_of[f.uid] = node
            chain = f.references or ((f.in_reply_to,) if f.in_reply_to else ())
            above = 0
            relinked = False
            for ref in chain:
                child = ids.get(ref, 0)
                if not child:
                    child = ids[ref] = count
                    count += 1
                    relinked = True
                named[child] = True
                if above:
                    relinked = link(above, child) or relinked
                above = child
            if parent[node] and parent[node] != above:
                forest.cut(node)  # its own references say otherwise: they win
            if above and above != node and not parent[node]:
                if not has_child[node]:
                    parent[node] = above  # a message nobody refers to yet: no loop possible
                    has_child[above] = True
                    if forest.lct is not None:
                        forest.lct.link(node, above)
                else:
                    link(above, node)
            quiet[node] = fresh and not relinked
            if prepared is not None:
                if fresh and not relinked and node == len(prepared.key):
                    prepared.hang(node, parent[node], date[node] * 4294967296 + f.uid)
                else:
                    prepared = self.prepared = None
        forest.trim(count)

    def remove(self, uids: Sequence[int]) -> bool:
        """Take these messages out, if that leaves what step 1 over the others would have
        made (True); else change nothing (False: start again without them).

        It does when each message changed nothing but its own node: its node new (its
        Message-ID not seen before, or seen and so not its), its references all known and
        linking nothing that was not linked, its id named in no message's references (so no
        node was ever put, or refused, below it) and had by no later message. Step 1 without
        it then makes the same links: its node, a leaf, is on no path a loop test walks, and
        the rest is numbered one lower after it, which orders nothing (siblings and threads
        are ordered by date and UID). The node stays as a dummy without children, which
        steps 2 to 5 leave out."""
        forest, node_of = self.forest, self.node_of
        nodes = [node_of.get(u, 0) for u in uids]
        named, quiet, twice = forest.named, forest.quiet, self.claimed_twice
        if not all(n and quiet[n] and not named[n] and n not in twice for n in nodes):
            return False
        for u, node in zip(uids, nodes, strict=True):
            f = self.subject.pop(node)
            del node_of[u]
            if forest.ids.get(f.message_id) == node:
                del forest.ids[f.message_id]  # a later message with this id gets a node of its own
            forest.uid[node] = 0
            forest.date[node] = 0
            if self.prepared is not None:
                self.prepared.unhang(node, forest.parent[node])
        return True


class _Forest:
    """Step 1's nodes: `parent[n]` (0: a root), `uid[n]` (0: a dummy, no message), `date[n]`
    (the sort date of a message); made with `room` nodes, `trim` to those used."""

    __slots__ = ("date", "has_child", "ids", "lct", "named", "parent", "quiet", "uid")

    def __init__(self, room: int) -> None:
        self.parent = [0] * room
        self.uid = [0] * room
        self.date = [0] * room
        self.has_child = [False] * room  # has had a child (a cut does not clear it)
        # For Linked.remove: the node's id was named in some message's references; the node
        # is a message that changed nothing but its own node (see there).
        self.named = [False] * room
        self.quiet = [False] * room
        self.ids: dict[str, int] = {}
        self.lct: LinkCut | None = None

    def trim(self, count: int) -> None:
        for array in (self.parent, self.uid, self.date, self.has_child, self.named, self.quiet):
            del array[count:]
        if self.lct is not None:
            self.lct.trim(count)

    def grow(self, room: int) -> None:
        """`room` more nodes (`trim` gives back those not used)."""
        zeros = [0] * room
        self.parent += zeros
        self.uid += zeros
        self.date += zeros
        self.has_child += [False] * room
        self.named += [False] * room
        self.quiet += [False] * room
        if self.lct is not None:
            self.lct.grow(room)

    def link(self, parent: int, child: int) -> bool:
        """Make `parent` the parent of `child`, unless it has one (the first link stays) or
        that would close a loop; whether it did."""
        if parent == child or self.parent[child]:
            return False
        # `child` is a root: the link closes a loop when it is the root of `parent`'s tree,
        # which only a node that ever had children can be.
        if self.has_child[child] and self._root_is(parent, child):
            return False
        self.parent[child] = parent
        self.has_child[parent] = True
        if self.lct is not None:
            self.lct.link(child, parent)
        return True

    def cut(self, node: int) -> None:
        self.parent[node] = 0
        if self.lct is not None:
            self.lct.cut(node)

    def _root_is(self, node: int, root: int) -> bool:
        if self.lct is not None:
            return self.lct.root(node) == root
        parent = self.parent
        for _ in range(WALK):
            up = parent[node]
            if not up:
                return node == root
            node = up
        self.lct = LinkCut(parent)
        return self.lct.root(node) == root


class _Prepared:
    """What steps 2 and 3 make of the links alone: `roots` (the nodes without a parent, in
    node order), each node's `key` among siblings ((date, UID) as one integer: UIDs are below
    2**32, a dummy has 0; integers compare in C), `above` (itself for a message, else the
    first message above it, else the dummy at the top), and the messages below each node as
    chains (`first`, `next`, as in `Thread`) in key order."""

    __slots__ = ("above", "first", "key", "next", "roots")

    def __init__(self, forest: _Forest) -> None:
        parent, uid = forest.parent, forest.uid
        key = self.key = [d * 4294967296 + u for d, u in zip(forest.date, uid, strict=True)]
        n = len(parent)
        nodes = range(n)
        self.roots = list(compress(nodes, map(operator.not_, parent)))
        del self.roots[0]  # node 0 is no node
        above = self.above = self._first_message_above(parent, uid)
        # Each message below another node goes to the first message above it (or the dummy at
        # the top), last first, each put at the head of its chain: the chains come in order.
        below = list(compress(nodes, map(min, parent, uid)))
        below.sort(key=key.__getitem__, reverse=True)
        first = self.first = [0] * n
        after = self.next = [0] * n
        for node in below:
            target = above[parent[node]]
            after[node] = first[target]
            first[target] = node

    @staticmethod
    def _first_message_above(parent: list[int], uid: list[int]) -> list[int]:
        """Each path walked once."""
        above = [n if u else 0 for n, u in enumerate(uid)]
        for start in compress(range(len(uid)), map(operator.not_, uid)):
            if above[start] or not start:
                continue
            path = []
            node = start
            while not above[node] and parent[node]:
                path.append(node)
                node = parent[node]
            target = above[node] or node
            above[node] = target
            for p in path:
                above[p] = target
        return above

    def hang(self, node: int, up: int, key: int) -> None:
        """A new message, the next node, below `up` (0: a root), nothing else changed."""
        self.key.append(key)
        self.above.append(node)
        self.first.append(0)
        self.next.append(0)
        if not up:
            self.roots.append(node)
            return
        target = self.above[up]
        first, after, keys = self.first, self.next, self.key
        kid = first[target]
        if not kid or keys[kid] > key:
            after[node] = kid
            first[target] = node
            return
        while after[kid] and keys[after[kid]] < key:
            kid = after[kid]
        after[node] = after[kid]
        after[kid] = node

    def unhang(self, node: int, up: int) -> None:
        """A message taken out (Linked.remove): its node, a leaf, is no child any more (a
        root without children is no root to steps 2 to 5)."""
        self.key[node] = 0
        if not up:
            return
        target = self.above[up]
        first, after = self.first, self.next
        kid = first[target]
        if kid == node:
            first[target] = after[node]
        else:
            while after[kid] != node:
                kid = after[kid]
            after[kid] = after[node]
        after[node] = 0


class _Finish:
    """Steps 2 to 5 over the forest (index-thread-finish.c), from what is prepared of it;
    neither is changed: step 5 works on copies of the arrays. The chains that step 5
    changes (`touched`) are put in order again at the end."""

    def __init__(self, forest: _Forest, subject: dict[int, SortFields], ready: _Prepared) -> None:
        self.forest = forest
        self.subject = subject
        self.uid = list(forest.uid)
        self.key = list(ready.key)
        self.roots = list(ready.roots)
        self.first = list(ready.first)
        self.next = list(ready.next)
        self.touched: set[int] = set()  # chains changed by step 5: to put in order again
        # The roots of step 4 and 5 (made by `references`, see there).
        self.r_node: list[int] = []
        self.r_dummy: list[bool] = []
        self.r_ignore: list[bool] = []
        self.r_joins: list[int] = []
        self.r_key: list[int] = []
        self.r_reply: list[bool] = []

    def _in_order(self, node: int) -> None:
        """The chain of `node`'s children in (date, UID) order again, if step 5 changed it."""
        if node not in self.touched:
            return
        self.touched.discard(node)
        first, after = self.first, self.next
        kids = []
        kid = first[node]
        while kid:
            kids.append(kid)
            kid = after[kid]
        if len(kids) < 2:
            return
        kids.sort(key=self.key.__getitem__)
        first[node] = kids[0]
        for a, b in pairwise(kids):
            after[a] = b
        after[kids[-1]] = 0

    # The roots of steps 4 and 5 are numbered 0, 1, ... (a list of them, `order`, is sorted),
    # each with its node, whether it is a dummy or left out, the root it joins (-1: none), its
    # key and whether its subject was a reply's: arrays, not an object a root.

    def _sort_roots(self, order: list[int]) -> None:
        """sort_root_nodes(): a dummy root sorts by its first child, gives way to an only
        child, and without children is no root at all."""
        key, first, after = self.key, self.first, self.next
        r_node, r_dummy, r_ignore, r_key = self.r_node, self.r_dummy, self.r_ignore, self.r_key
        for r in order:
            if r_ignore[r]:
                continue
            node = r_node[r]
            if r_dummy[r]:
                self._in_order(node)
                kid = first[node]
                if not kid:
                    r_ignore[r] = True
                elif not after[kid]:
                    r_node[r] = kid
                    r_dummy[r] = False
                    r_key[r] = key[kid]
                else:
                    r_key[r] = key[kid]
            else:
                r_key[r] = key[node]
        order.sort(key=r_key.__getitem__)

    def references(self) -> Thread:
        uid = self.uid
        count = len(self.roots)
        self.r_node = list(self.roots)
        self.r_dummy = [not uid[node] for node in self.roots]
        self.r_ignore = [False] * count
        self.r_joins = [-1] * count
        self.r_key = [0] * count
        self.r_reply = [False] * count
        order = list(range(count))
        self._sort_roots(order)
        self._gather_subjects(order)
        if self._merge_subjects(order):
            self._sort_roots(order)
        r_node, r_ignore = self.r_node, self.r_ignore
        return self._thread([r_node[r] for r in order if not r_ignore[r]])

    def _gather_subjects(self, order: list[int]) -> None:
        """Step 5 (A, B): the subject table, each root pointing at the one it joins."""
        table: dict[str, int] = {}
        first, subject = self.first, self.subject
        r_node, r_dummy, r_ignore = self.r_node, self.r_dummy, self.r_ignore
        r_joins, r_reply = self.r_joins, self.r_reply
        for r in order:
            if r_ignore[r]:
                continue
            f = subject[first[r_node[r]] if r_dummy[r] else r_node[r]]
            if not f.subject:
                continue  # (ii): no subject, no gathering
            held = table.get(f.subject)
            if held is None:
                table[f.subject] = r
            elif not r_dummy[held] and (r_dummy[r] or (r_reply[held] and not f.reply)):
                r_joins[held] = r
                table[f.subject] = r
            else:
                r_joins[r] = held
            r_reply[r] = f.reply

    def _merge_subjects(self, order: list[int]) -> bool:
        """Step 5 (C): each root that joins another is merged into the one at the top. A
        child is put at the head of the chain (the chain is put in order once, at the end):
        a thousand roots joining one cost a thousand steps, not a million."""
        changed = False
        first, after, touched = self.first, self.next, self.touched
        r_node, r_dummy, r_ignore = self.r_node, self.r_dummy, self.r_ignore
        r_joins, r_reply = self.r_joins, self.r_reply
        for cur in list(order):
            if r_joins[cur] < 0 or r_ignore[cur]:
                continue
            changed = True
            top = r_joins[cur]
            while r_joins[top] >= 0:
                top = r_joins[top]
            node, top_node = r_node[cur], r_node[top]
            if r_dummy[cur]:  # both dummies: the children become siblings
                kid = first[node]
                if kid:
                    while after[kid]:
                        kid = after[kid]
                    after[kid] = first[top_node]
                    first[top_node] = first[node]
                    first[node] = 0
                touched.add(top_node)
                r_ignore[cur] = True
            elif r_dummy[top] or (r_reply[cur] and not r_reply[top]):
                after[node] = first[top_node]
                first[top_node] = node
                touched.add(top_node)
                r_ignore[cur] = True
            else:  # a new dummy above both
                dummy = len(self.uid)
                self.uid.append(0)
                self.key.append(0)
                first.append(top_node)
                after.append(0)
                after[top_node] = node
                after[node] = 0
                touched.add(dummy)
                new = len(r_node)
                r_node.append(dummy)
                r_dummy.append(True)
                r_ignore.append(False)
                r_joins.append(-1)
                self.r_key.append(0)
                r_reply.append(False)
                r_joins[top] = new
                r_ignore[top] = True
                r_ignore[cur] = True
                order.append(new)
        return changed

    def refs(self) -> Thread:
        """REFS: the threads ordered by their latest message (sort_root_nodes_ref2()): a
        thread's date is its latest message's, and at least 0, as Dovecot starts from 0."""
        parent, uid, date, first = self.forest.parent, self.uid, self.forest.date, self.first
        n = len(parent)
        top = [0] * n
        latest = [0] * n
        for start in range(1, n):
            path = []
            node = start
            while not top[node] and parent[node]:
                path.append(node)
                node = parent[node]
            root = top[node] or node
            top[node] = root
            for p in path:
                top[p] = root
            if uid[start] and latest[root] < date[start]:
                latest[root] = date[start]
        keyed = [
            ((latest[node], uid[node]), node) for node in self.roots if uid[node] or first[node]
        ]
        keyed.sort(key=lambda item: item[0])
        return self._thread([node for _, node in keyed])

    def _thread(self, roots: list[int]) -> Thread:
        for node in list(self.touched):  # the others are in order
            self._in_order(node)
        return Thread(self.uid, self.first, self.next, roots)


# ---------------------------------------------------------------------------------------------
# The answer


def write(thread: Thread, number: Callable[[int], int]) -> bytes:
    """`* THREAD ...` without the CRLF (imap_thread_write()): `(a b c)` for a chain, `(a (b)(c))`
    for children, `((a)(b))` under a dummy; `number` turns a UID into what the client gets.
    No recursion: a thread 100,000 deep is written as any other."""
    if not thread.roots:
        return b"* THREAD"  # RFC 5256 thread-data: "THREAD" [SP 1*thread-list]
    uid, first, after = thread.uid, thread.first, thread.next
    # The text with "%d" for each number, and the UIDs, formatted at the end in one step (in
    # C: a third of the time of a str a number).
    out: list[str] = ["* THREAD "]
    put = out.append
    uids: list[int] = []
    keep = uids.append
    # One entry per open parenthesis of a child written among siblings: the next sibling
    # (0: the last one), written when the child's subtree is done.
    open_: list[int] = []
    push, pop = open_.append, open_.pop
    for root in thread.roots:
        put("(")
        node = first[root]
        if uid[root]:
            put("%d")
            keep(uid[root])
            if node:
                put(" ")
        while True:
            if node:  # the first of a list of children: only an only child has no parentheses
                if after[node]:
                    put("(")
                    push(after[node])
                put("%d")
                keep(uid[node])
                node = first[node]
                if node:
                    put(" ")
                continue
            if not open_:
                break
            put(")")
            node = pop()
            if node:  # the next sibling, in parentheses too
                put("(")
                push(after[node])
                put("%d")
                keep(uid[node])
                node = first[node]
                if node:
                    put(" ")
        put(")")
    return ("".join(out) % tuple(map(number, uids))).encode("ascii")
