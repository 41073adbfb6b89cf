"""The analytics service: a read model of tickets, chats and survey answers built from events only."""
