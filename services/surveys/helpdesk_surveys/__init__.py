"""The surveys service: customer satisfaction (CSAT) after a ticket is resolved."""
