"""A link/cut tree (Sleator and Tarjan, "A data structure for dynamic trees", 1983) over
nodes numbered 0..n-1, for THREAD's step 1 (mra/imap/threads.py): once a loop test walks too
far up a forest, every later root, link and cut costs O(log n) amortised, so that no crafted
set of messages makes THREAD quadratic (SECURITY.md 1)."""

from __future__ import annotations

__all__ = ["LinkCut"]


class LinkCut:
    """A link/cut tree (Sleator and Tarjan) mirroring a forest of rooted trees: `root`,
    `link` of a root below a node and `cut` of a node from its parent in O(log n) amortised.
    Made from the forest's parent array as it is (each node a path of its own), without
    recursion; no re-rooting is needed, so there is nothing to push down."""

    __slots__ = ("left", "right", "up")

    def __init__(self, parent: list[int]) -> None:
        self.up = list(parent)  # splay parent, or the path-parent at a splay root
        self.left = [0] * len(parent)
        self.right = [0] * len(parent)

    def grow(self, room: int) -> None:
        zeros = [0] * room
        self.up += zeros
        self.left += zeros
        self.right += zeros

    def trim(self, count: int) -> None:
        for array in (self.up, self.left, self.right):
            del array[count:]

    def _is_root(self, x: int) -> bool:
        p = self.up[x]
        return p == 0 or (self.left[p] != x and self.right[p] != x)

    def _rotate(self, x: int) -> None:
        up, left, right = self.up, self.left, self.right
        y = up[x]
        z = up[y]
        y_is_root = self._is_root(y)
        if left[y] == x:
            b = right[x]
            left[y] = b
            right[x] = y
        else:
            b = left[x]
            right[y] = b
            left[x] = y
        if b:
            up[b] = y
        if not y_is_root:
            if left[z] == y:
                left[z] = x
            else:
                right[z] = x
        up[x] = z
        up[y] = x

    def _splay(self, x: int) -> None:
        up, left = self.up, self.left
        while not self._is_root(x):
            y = up[x]
            if not self._is_root(y):
                z = up[y]
                self._rotate(y if (left[y] == x) == (left[z] == y) else x)
            self._rotate(x)

    def _access(self, x: int) -> None:
        last = 0
        y = x
        while y:
            self._splay(y)
            self.right[y] = last
            last = y
            y = self.up[y]
        self._splay(x)

    def root(self, x: int) -> int:
        self._access(x)
        left = self.left
        while left[x]:
            x = left[x]
        self._splay(x)
        return x

    def link(self, child: int, parent: int) -> None:
        """`child` is the root of its tree."""
        self._access(child)
        self.up[child] = parent

    def cut(self, x: int) -> None:
        self._access(x)
        above = self.left[x]
        if above:
            self.up[above] = 0
            self.left[x] = 0
