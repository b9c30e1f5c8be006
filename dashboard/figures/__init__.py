"""Figure builders: pure functions DataFrame -> plotly Figure. No Dash, no DuckDB."""
