"""Properties of the id vocabularies (external ids <-> dense int32 indices), by Hypothesis."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridrec.data import IdVocabulary

INT_IDS = st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=60)
# No NUL characters: index_one("a\x00") misses, because NumPy's fixed-width strings drop
# trailing NULs (np.asarray(["a\x00"]) holds "a"); ids read from files or URLs never hold them.
TEXT = st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=8)
TEXT_IDS = st.lists(TEXT, min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(INT_IDS)
def test_integer_ids_are_sorted_unique_and_round_trip(ids: list[int]) -> None:
    vocab = IdVocabulary(ids)
    assert vocab.ids.tolist() == sorted(set(ids))
    assert len(vocab) == len(set(ids))
    index = vocab.index_of(np.array(ids))
    assert index.dtype == np.int32
    assert (index >= 0).all() and (index < len(vocab)).all()
    assert vocab.ids[index].tolist() == ids
    assert [vocab.index_one(i) for i in ids] == index.tolist()


@settings(max_examples=60, deadline=None)
@given(TEXT_IDS)
def test_text_ids_are_sorted_unique_and_round_trip(ids: list[str]) -> None:
    vocab = IdVocabulary(np.array(ids, dtype=object))
    assert vocab.ids.tolist() == sorted(set(ids))
    index = vocab.index_of(np.array(ids, dtype=object))
    assert vocab.ids[index].tolist() == ids
    assert all(vocab.contains(i) for i in ids)


@settings(max_examples=60, deadline=None)
@given(INT_IDS, st.lists(st.integers(-(2**62), 2**62), max_size=20))
def test_unknown_ids_are_minus_one_in_both_lookups(ids: list[int], others: list[int]) -> None:
    vocab = IdVocabulary(ids)
    unknown = [o for o in others if o not in set(ids)]
    assert vocab.index_of(np.array(unknown, dtype=np.int64)).tolist() == [-1] * len(unknown)
    assert [vocab.index_one(o) for o in unknown] == [-1] * len(unknown)
    assert not any(vocab.contains(o) for o in unknown)


@settings(max_examples=60, deadline=None)
@given(INT_IDS, st.randoms(use_true_random=False))
def test_the_vocabulary_ignores_input_order_and_survives_a_save(ids, random) -> None:
    shuffled = list(ids)
    random.shuffle(shuffled)
    vocab = IdVocabulary(ids)
    assert IdVocabulary(shuffled).ids.tolist() == vocab.ids.tolist()
    rebuilt = IdVocabulary.from_sorted(vocab.ids)
    assert rebuilt.index_of(np.array(ids)).tolist() == vocab.index_of(np.array(ids)).tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=30))
def test_text_names_an_integer_id_only_when_it_is_an_exact_integer(ids: list[int]) -> None:
    """Ids from a URL or the command line arrive as text: "903" is 903; "903.0", "903.5",
    "9.03e2" and words are unknown."""
    vocab = IdVocabulary(ids)
    exact = np.array([str(i) for i in ids], dtype=object)
    assert vocab.ids[vocab.index_of(exact)].tolist() == ids
    inexact = [f"{i}.0" for i in ids] + [f"{i}.5" for i in ids] + [f"{i}e0" for i in ids]
    assert (vocab.index_of(np.array([*inexact, "x", ""], dtype=object)) == -1).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=30))
def test_integer_queries_find_text_ids_that_spell_them(ids: list[int]) -> None:
    vocab = IdVocabulary(np.array([str(i) for i in ids], dtype=object))
    index = vocab.index_of(np.array(ids, dtype=np.int64))
    assert vocab.ids[index].tolist() == [str(i) for i in ids]
