"""The guided lesson: its steps (`steps`), and the class's shared state on the server (`state`): the teacher's
current step and the view students start in. No Streamlit; the sidebar and the banner are `vitdemo.ui.lesson`."""
