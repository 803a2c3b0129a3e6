"""Visitors: profiles written by the tracker (PUT), read by the dashboard with their revenue timelines."""
