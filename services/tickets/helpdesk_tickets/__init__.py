"""The tickets service: owns tickets, their messages, history, workflow and numbers."""
