"""Edit-distance helpers for short strings (titles, marks): pure Python, no runtime dependency."""

from __future__ import annotations


def levenshtein(a: str, b: str) -> int:
    """Minimum number of single-character insertions, deletions and substitutions turning ``a`` into ``b``."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def ratio(a: str, b: str) -> float:
    """Similarity 0 to 100 from the longest common subsequence: ``200 * LCS / (len(a) + len(b))``."""
    if not a and not b:
        return 100.0
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if ca == cb else max(prev[j], cur[j - 1]))
        prev = cur
    return 200.0 * prev[-1] / (len(a) + len(b))


def matched_shares(read: str, words: list[str]) -> list[float]:
    """For each of ``words`` (a known phrase), the share of its letters that a longest common subsequence with
    ``read`` aligns to an equal letter: how much of each word was actually read (compare folded letters)."""
    target = "".join(words)
    n, m = len(read), len(target)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            same = read[i] == target[j]
            table[i][j] = table[i + 1][j + 1] + 1 if same else max(table[i + 1][j], table[i][j + 1])
    hit = [False] * m
    i = j = 0
    while i < n and j < m:
        if read[i] == target[j]:
            hit[j] = True
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    shares, start = [], 0
    for word in words:
        end = start + len(word)
        shares.append(sum(hit[start:end]) / len(word) if word else 1.0)
        start = end
    return shares
