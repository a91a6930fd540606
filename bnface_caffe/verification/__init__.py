"""Face verification: is this pair of faces the same person?

metrics.py  accuracy at a threshold, k-fold threshold selection (the LFW protocol), ROC, AUC,
            EER, TAR at a FAR: pure functions of (scores, same) arrays
pairs.py    same/different pairs drawn with a seed in LFW's shape, and LFW's pairs.txt
features.py L2-normalised embeddings and cosine scores
results.py  the figures as a dict, CSV/markdown tables and the ROC plot
"""
