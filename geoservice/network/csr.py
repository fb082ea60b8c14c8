"""Directed graphs as CSR arrays, built directly: parallel entries keep the **minimum**
weight (scipy's COO->CSR would sum them) and zero weights stay entries."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

Array = NDArray[np.float64]


def min_csr(rows: NDArray[np.int64], cols: NDArray[np.int64], weights: Array, n: int) -> csr_matrix:
    """CSR matrix keeping the minimum weight of parallel entries (and explicit zeros)."""
    return min_csr_kept(rows, cols, weights, n)[0]


def min_csr_kept(
    rows: NDArray[np.int64], cols: NDArray[np.int64], weights: Array, n: int
) -> tuple[csr_matrix, NDArray[np.int64]]:
    """``min_csr`` and, for each of its entries, the position of the input entry it kept
    (columns sorted within each row)."""
    order = np.lexsort((weights, cols, rows))
    rows, cols, weights = rows[order], cols[order], weights[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, weights = rows[first], cols[first], weights[first]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, rows + 1, 1)
    return csr_matrix((weights, cols, np.cumsum(indptr)), shape=(n, n)), order[first]


def edge_graph(
    source: NDArray[np.int64],
    target: NDArray[np.int64],
    forward_s: Array,
    backward_s: Array,
    n_nodes: int,
) -> tuple[csr_matrix, NDArray[np.int64]]:
    """The graph of edges ``source -> target`` costing ``forward_s`` one way and
    ``backward_s`` the other (``inf``: not allowed), and which edge each entry travels."""
    fwd, bwd = np.isfinite(forward_s), np.isfinite(backward_s)
    matrix, kept = min_csr_kept(
        np.concatenate([source[fwd], target[bwd]]),
        np.concatenate([target[fwd], source[bwd]]),
        np.concatenate([forward_s[fwd], backward_s[bwd]]),
        n_nodes,
    )
    edges = np.arange(len(source))
    return matrix, np.concatenate([edges[fwd], edges[bwd]])[kept]


def subgraph(matrix: csr_matrix, nodes: NDArray[np.int64]) -> csr_matrix:
    """The graph among ``nodes`` (sorted), in their order, without touching the rest."""
    indptr = matrix.indptr
    start, count = indptr[nodes], indptr[nodes + 1] - indptr[nodes]
    position = np.repeat(start, count) + (
        np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    )
    row = np.repeat(np.arange(len(nodes)), count)
    col_global = matrix.indices[position]
    col = np.searchsorted(nodes, col_global)
    keep = (col < len(nodes)) & (nodes[np.minimum(col, len(nodes) - 1)] == col_global)
    return csr_matrix(
        (
            matrix.data[position][keep],
            col[keep],
            np.concatenate([[0], np.cumsum(np.bincount(row[keep], minlength=len(nodes)))]),
        ),
        shape=(len(nodes), len(nodes)),
    )
