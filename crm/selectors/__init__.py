"""crm selectors: reads only. One module per area; nothing here writes."""
