-- Swarms that exist: checked before a WebSocket upgrade or an API call reaches a swarm's
-- Durable Object, so an unknown id never wakes (or creates) an object.
CREATE TABLE IF NOT EXISTS swarms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
