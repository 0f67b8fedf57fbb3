"""The embedded index's tables (layout ``LAYOUT``; ``write.create_schema`` creates them, migrating an older
layout), in the catalog's database file but self-contained (a hit never needs the catalog's ``documents``):

- ``search_docs``: one narrow row per document (facet counts and filters scan it): id, source, batch, file_code,
  status, date, year, secrecy level, facet values and the folded số/ký hiệu key (``schemas.query.code_key``).
  Its key ``docid`` is ``n << 2 | secrecy_level`` and is the rowid of the document's FTS rows, so the caller's
  clearance is checked on the rowid itself, inside every query (hits, totals and facet counts never see a
  document above it), without a lookup per match.
- ``search_text``: the metadata JSON and the NFC text (snippets are cut from it), and the start of the folded
  text (``SNIPPET_PREFIX`` characters: the query's words are found there without folding it again).
- ``search_fts``: contentless FTS5 (``content=''``: the text is stored once, in ``search_text``), columns
  ``code`` (số/ký hiệu), ``title`` (type, subject, issuing body, signer) and ``body`` (page text), all folded
  with ``schemas.text.fold`` (đ→d, every mark removed), and ``exact``: the document's distinct words written
  with diacritics, in ``schemas.text.canonical_tones`` form (``hòa``/``hoà`` one token; ``hoa``, ``hóa`` others).
- ``search_head``: the same for the heading alone (``code``, and type, subject and signer: not the issuing body,
  which most documents of an archive share): small, so it ranks cheaply.
- ``search_pairs``: contentless FTS5 over the document's word pairs (``tokens._pair_text``): a token for every two
  folded words that follow each other in ``code``, ``title`` or ``body``, at the first word's position, so a
  phrase of ASCII words (every folded Vietnamese phrase) is a phrase of pair tokens, found from the pairs'
  short doclists instead of the positions of every document holding all its words. Pairs are written in
  batches (``PAIRS_BATCH`` documents, one FTS5 segment): a document's pairs wait in ``search_pairs_pending``
  until then, and a phrase is matched on the words (``search_fts``) for the pending documents, the newest.
- ``search_wordsets``: the match sets of the most common words, as bitmaps over serials, for facet counts
  (``wordsets``).
"""

from __future__ import annotations

LEVEL_BITS = 2  # docid = n << LEVEL_BITS | secrecy level
LEVEL_MASK = (1 << LEVEL_BITS) - 1
MAX_LEVEL = 3
LAYOUT = "7"  # 7: + search_pairs / search_pairs_pending; 6: search_docs / search_text / search_fts / search_head
# (2: fts + doc_text over the catalog)
PAIRS_HASH_BYTES = 32 << 20  # FTS5 memory for a batch of pairs: one segment per batch
TOKENIZE = "unicode61 remove_diacritics 0"  # every FTS5 table's tokenizer (search_pairs follows search_fts's)
SNIPPET_PREFIX = 1300  # characters of a hit's text read for its snippet (the whole text when that is not enough)
FTS_TABLES = ("search_fts", "search_head", "search_pairs")

DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS search_docs (
    docid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    batch TEXT NOT NULL,
    file_code TEXT,
    status TEXT NOT NULL,
    issued_date TEXT,
    year INTEGER,
    level INTEGER NOT NULL,
    type_name TEXT,
    organ_name TEXT,
    classification TEXT NOT NULL,
    code_key TEXT
);
CREATE INDEX IF NOT EXISTS search_docs_code ON search_docs(code_key) WHERE code_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS search_docs_newest ON search_docs(ifnull(issued_date, '') DESC, id);
CREATE INDEX IF NOT EXISTS search_docs_oldest ON search_docs(ifnull(issued_date, '~'), id);
CREATE TABLE IF NOT EXISTS search_text (
    docid INTEGER PRIMARY KEY, metadata TEXT NOT NULL, text TEXT NOT NULL, folded TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
    code, title, body, exact, content = '', tokenize = '{TOKENIZE}'
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_head USING fts5(
    code, title, exact, content = '', tokenize = '{TOKENIZE}'
);
CREATE VIRTUAL TABLE IF NOT EXISTS search_pairs USING fts5(
    pairs, content = '', columnsize = 0, tokenize = '{TOKENIZE}'
);
CREATE TABLE IF NOT EXISTS search_pairs_pending (docid INTEGER PRIMARY KEY, pairs TEXT NOT NULL);
"""

# added to layout 7 without a rebuild (``write.create_schema`` creates it in an index written before it)
WORDSETS_DDL = """CREATE TABLE IF NOT EXISTS search_wordsets (
    item TEXT PRIMARY KEY, word TEXT NOT NULL, generation TEXT NOT NULL, seen INTEGER NOT NULL,
    deleted INTEGER NOT NULL, bits BLOB NOT NULL
)"""

DOC_COLUMNS = "docid, id, source, batch, file_code, status, issued_date, year, level, type_name, organ_name, " \
              "classification, code_key"
