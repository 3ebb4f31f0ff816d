"""Class set: the class's own handwriting. The drawings that fooled each model, who drew what, which model reads
the class best; the teacher deletes drawings and exports the set."""

import streamlit as st

from vitdemo.ui import classset, shell
from vitdemo.views.names import dataset_name

with shell.stop_on_failure():
    dataset = shell.selection().dataset
    cs = classset.store()
    subs = cs.list(dataset)

    st.markdown(f"## The class's own handwriting · {dataset_name(dataset)}")
    classset.show_notice()
    if not subs:
        st.info(
            "No drawings yet: draw on the Draw page, pick the true label under the answers and submit it to the "
            "class set. Can you find a drawing that fools a model?",
            icon=":material/draw:",
        )
        st.stop()
    teacher = classset.is_teacher()

    st.markdown("### Drawings that fooled the models")
    classset.gallery(cs, subs, teacher)
    st.markdown("### Which model reads our class best")
    classset.leaderboard(cs, dataset)
    st.markdown("### Who drew what")
    classset.counts(subs)
    if teacher:
        st.markdown("### Export")
        classset.export_button(cs, dataset)
