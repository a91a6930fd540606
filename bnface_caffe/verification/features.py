"""Embeddings to pair scores: each feature flattened and scaled to unit length, a pair's
score the cosine of its two features (their dot product once normalised)."""
import numpy as np


def l2_normalize(features):
    """[N, ...] -> [N, D] float64 rows of length 1 (an all-zero row stays zero)."""
    flat = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return np.divide(flat, norms, out=np.zeros_like(flat), where=norms > 0)


def cosine_scores(normalized, first, second):
    """Cosine similarity of each pair (rows of unit-length features)."""
    return np.einsum("ij,ij->i", normalized[first], normalized[second])
