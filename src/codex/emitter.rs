//! The idempotent boot emitter (`/usr/local/bin/codex_mcp_config.sh`). See issue #2, item 4.
