"""``TopologyDescription``: the text ``Topology.describe()`` prints, exactly as Kafka prints it.

Mirrors ``InternalTopologyBuilder.TopologyDescription`` and its nodes (Kafka 4.0). Vocabulary:

- **sub-topology**: a connected component of the processor graph (processors sharing a store are
  connected too); Kafka makes one task per sub-topology and input partition.
- **node order**: inside a sub-topology nodes, and each node's ``-->`` / ``<--`` lists, are sorted
  by the size of the sub-tree below the node (largest first), then by name (``NodeComparator``).
- **sets**: a source's topics and a processor's stores are Java ``HashSet`` s in Kafka, so they
  print in Java's hash order; :func:`java_hash_set_order` reproduces it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode()`` as a signed 32-bit int (``s[0]*31^(n-1) + ... + s[n-1]``)."""
    data = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(data), 2):  # one UTF-16 code unit at a time, as Java's char
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _java_capacity(n: int, from_collection: bool) -> int:
    """Table size of a Java ``HashMap`` holding ``n`` keys (load factor 0.75)."""
    if from_collection:  # new HashSet<>(collection): max(n / .75 + 1, 16) rounded up
        wanted = max(int(n / 0.75) + 1, 16)
        capacity = 16
        while capacity < wanted:
            capacity *= 2
        return capacity
    capacity = 16  # filled one add() at a time: doubles once size exceeds 0.75 * capacity
    while n > capacity * 3 // 4:
        capacity *= 2
    return capacity


def java_hash_set_order(items: Iterable[str], from_collection: bool = True) -> list[str]:
    """The order in which a Java ``HashSet`` of ``items`` (added in this order) iterates them.

    ``HashMap`` puts a key in bucket ``(h ^ (h >>> 16)) & (capacity - 1)`` and iterates buckets in
    ascending order, keys within a bucket in insertion order. Example: ``["b", "a"]`` hash to 98
    and 97, so Java prints ``[a, b]``.
    """
    unique = list(dict.fromkeys(items))
    capacity = _java_capacity(len(unique), from_collection)

    def bucket(text: str) -> int:
        h = java_string_hash(text) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(unique, key=bucket)  # sorted() is stable: insertion order within a bucket


class _TreeNode:
    __slots__ = ("key", "left", "parent", "red", "right")

    def __init__(self, key: Node, parent: _TreeNode | None) -> None:
        self.key = key
        self.left: _TreeNode | None = None
        self.right: _TreeNode | None = None
        self.parent = parent
        self.red = True


class JavaTreeSet:
    """A Java ``TreeSet`` of nodes ordered by ``NodeComparator``, as a red-black tree.

    Kafka fills each node's ``-->`` / ``<--`` sets while sub-tree sizes are still growing, and a
    tree never re-sorts, so the printed order depends on the tree's shape at each insertion. This
    class inserts exactly as a red-black tree does (textbook insertion and recolouring), so the
    same sequence of insertions gives the same order as Kafka.
    """

    def __init__(self) -> None:
        self.root: _TreeNode | None = None

    def add(self, key: Node) -> None:
        if self.root is None:
            self.root = _TreeNode(key, None)
            self.root.red = False
            return
        parent = self.root
        while True:
            if parent.key is key:
                return
            go_left = _compare(key, parent.key) < 0
            child = parent.left if go_left else parent.right
            if child is None:
                break
            parent = child
        node = _TreeNode(key, parent)
        if go_left:
            parent.left = node
        else:
            parent.right = node
        self._fix_after_insertion(node)

    def __iter__(self) -> Iterator[Node]:
        stack: list[_TreeNode] = []
        current = self.root
        while stack or current is not None:
            while current is not None:
                stack.append(current)
                current = current.left
            current = stack.pop()
            yield current.key
            current = current.right

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _rotate_left(self, p: _TreeNode) -> None:
        r = p.right
        assert r is not None
        p.right = r.left
        if r.left is not None:
            r.left.parent = p
        r.parent = p.parent
        if p.parent is None:
            self.root = r
        elif p.parent.left is p:
            p.parent.left = r
        else:
            p.parent.right = r
        r.left = p
        p.parent = r

    def _rotate_right(self, p: _TreeNode) -> None:
        left = p.left
        assert left is not None
        p.left = left.right
        if left.right is not None:
            left.right.parent = p
        left.parent = p.parent
        if p.parent is None:
            self.root = left
        elif p.parent.right is p:
            p.parent.right = left
        else:
            p.parent.left = left
        left.right = p
        p.parent = left

    def _fix_after_insertion(self, x: _TreeNode) -> None:
        while x is not self.root and x.parent is not None and x.parent.red:
            parent = x.parent
            grand = parent.parent
            assert grand is not None
            if parent is grand.left:
                uncle = grand.right
                if uncle is not None and uncle.red:
                    parent.red, uncle.red, grand.red = False, False, True
                    x = grand
                else:
                    if x is parent.right:
                        x = parent
                        self._rotate_left(x)
                    assert x.parent is not None
                    assert x.parent.parent is not None
                    x.parent.red, x.parent.parent.red = False, True
                    self._rotate_right(x.parent.parent)
            else:
                uncle = grand.left
                if uncle is not None and uncle.red:
                    parent.red, uncle.red, grand.red = False, False, True
                    x = grand
                else:
                    if x is parent.left:
                        x = parent
                        self._rotate_right(x)
                    assert x.parent is not None
                    assert x.parent.parent is not None
                    x.parent.red, x.parent.parent.red = False, True
                    self._rotate_left(x.parent.parent)
        assert self.root is not None
        self.root.red = False


def _compare(a: Node, b: Node) -> int:
    """Kafka's ``NodeComparator`` on the nodes' current sizes."""
    if a.size != b.size:
        return b.size - a.size
    return (a.name > b.name) - (a.name < b.name)


def _java_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(items) + "]"


@dataclass(eq=False)
class Node:
    """One node of a description: ``Source``, ``Processor`` or ``Sink``."""

    name: str
    size: int = 1
    predecessors: JavaTreeSet = field(default_factory=lambda: JavaTreeSet())
    successors: JavaTreeSet = field(default_factory=lambda: JavaTreeSet())

    def sort_key(self) -> tuple[int, str]:
        """Kafka's ``NodeComparator``: bigger sub-tree first, then by name."""
        return (-self.size, self.name)


def _names(nodes: JavaTreeSet) -> str:
    names = [n.name for n in nodes]
    return ", ".join(names) if names else "none"


@dataclass(eq=False)
class Source(Node):
    topics: tuple[str, ...] = ()
    pattern: str | None = None

    def __str__(self) -> str:
        topics = self.pattern if self.pattern is not None else _java_list(self.topics)
        return f"Source: {self.name} (topics: {topics})\n      --> {_names(self.successors)}"


@dataclass(eq=False)
class Processor(Node):
    stores: tuple[str, ...] = ()

    def __str__(self) -> str:
        return (
            f"Processor: {self.name} (stores: {_java_list(self.stores)})\n"
            f"      --> {_names(self.successors)}\n      <-- {_names(self.predecessors)}"
        )


@dataclass(eq=False)
class Sink(Node):
    topic: str = ""
    extractor: str | None = None

    def __str__(self) -> str:
        where = f"topic: {self.topic}" if self.extractor is None else (
            f"extractor class: {self.extractor}")
        return f"Sink: {self.name} ({where})\n      <-- {_names(self.predecessors)}"


@dataclass(eq=False)
class Subtopology:
    """One sub-topology: its id and its nodes in Kafka's order."""

    id: int
    nodes: list[Node]

    def __str__(self) -> str:
        body = "".join(f"    {node}\n" for node in sorted(self.nodes, key=Node.sort_key))
        return f"Sub-topology: {self.id}\n{body}\n"


@dataclass(eq=False)
class GlobalStore:
    """A global store's source and processor; it makes no tasks (``GlobalStore``)."""

    id: int
    source: Source
    processor: Processor

    def __str__(self) -> str:
        return (
            f"Sub-topology: {self.id} for global store (will not generate tasks)\n"
            f"    {self.source}\n    {self.processor}\n"
        )


@dataclass(eq=False)
class TopologyDescription:
    """What ``Topology.describe()`` returns; ``str()`` and the notebook display are Kafka's
    text."""

    subtopologies: list[Subtopology]
    global_stores: list[GlobalStore]

    def __str__(self) -> str:
        # Sub-topologies and global stores share one id sequence; each prints at its id.
        parts = sorted([*self.subtopologies, *self.global_stores], key=lambda part: part.id)
        return "Topologies:\n " + "".join(f"  {part}" for part in parts)

    def __repr__(self) -> str:
        return str(self)
