"""Hypothesis strategies for hostile JSON: any value, and COCO / LVIS category entries whose
fields are right, missing or any value."""

from __future__ import annotations

from hypothesis import strategies as st

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
category_entries = st.fixed_dictionaries(
    {},
    optional={
        "id": st.integers(0, 4) | json_values,
        "name": st.sampled_from(["cat", "dog", "", " "]) | json_values,
        "synonyms": st.lists(st.text(max_size=3), max_size=2) | json_values,
        "synset": st.none() | st.sampled_from(["dog.n.01", ""]) | json_values,
        "frequency": st.sampled_from(["f", "c", "r"]) | json_values,
        "def": st.text(max_size=5) | json_values,
    },
)
