"""Helpers of the Streamlit pages (app_pages/): escaping, cached reads, messages, widgets."""
