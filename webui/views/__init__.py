"""webui.views."""
