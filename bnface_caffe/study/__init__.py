"""The study behind "BN is faster but ends lower" (`tools/reproduce.py study`): seeds, scale and
ablations as data (plan.py), seeds → mean ± std (aggregate.py), tables (tables.py) and one
figure per question (figures.py). cli/reproduce_study.py runs it."""
