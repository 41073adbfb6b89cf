"""The knowledge-base service: owns articles, their versions, the search index and suggestions."""
