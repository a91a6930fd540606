"""The C library's rand() as glibc implements it, and std::random_shuffle as libstdc++
writes it on top of rand().

Caffe's HDF5Data layer shuffles its files and rows with std::random_shuffle, which
draws from rand(); Caffe never seeds it (random_seed does not reach it), so every
Caffe process shuffles in the same order: that of glibc's rand() from seed 1. One
process-wide stream, like the C library's, reproduces Caffe's order exactly as long
as the same shuffles happen in the same order.
"""
import threading


class CRand:
    """glibc random(): additive feedback r[i] = r[i-3] + r[i-31] (mod 2^32) over a
    state seeded by a Lehmer generator, the first 310 values discarded, outputs >> 1."""

    def __init__(self, seed=1):
        self.lock = threading.Lock()
        self.seed(seed)

    def seed(self, seed):
        seed = seed or 1
        r = [seed]
        for i in range(1, 31):
            r.append(16807 * r[i - 1] % 2147483647)
        r += r[:3]                               # r[31..33] = r[0..2]
        self.state = r[-31:]                     # the last 31 values
        self.k = 0
        for _ in range(34, 344):
            self._step()

    def _step(self):
        # state holds r[i-31 .. i-1] as a ring; r[i-31] is at k, r[i-3] at k + 28
        value = (self.state[self.k] + self.state[(self.k + 28) % 31]) & 0xFFFFFFFF
        self.state[self.k] = value
        self.k = (self.k + 1) % 31
        return value

    def rand(self):
        with self.lock:
            return self._step() >> 1

    def random_shuffle(self, items):
        """std::random_shuffle(first, last) in place: for i = 1..n-1 swap items[i] with
        items[rand() % (i + 1)]."""
        for i in range(1, len(items)):
            j = self.rand() % (i + 1)
            if i != j:
                items[i], items[j] = items[j], items[i]
        return items


# The process's rand() stream, as the C library keeps one.
C_RAND = CRand()
