"""The foundation: who may act (the access gate, roles, tokens, the allowlist) and what happened
(the audit log), with the htmx, websocket and YAML helpers every app uses. It imports no app."""
