"""Insights: aggregate charts of money and audience for the newsroom's audience and revenue
leads (reads contributions, newsletters and campaigns; nothing imports it)."""
