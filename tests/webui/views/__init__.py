"""Tests of webui.views."""
