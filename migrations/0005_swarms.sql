-- Swarms that exist, newest id first for the swarm list. Checked before a WebSocket upgrade
-- or an API call reaches a swarm's Durable Object, so an unknown id never wakes (or creates)
-- an object; each swarm's SwarmCoordinator is the source of truth for everything else.
CREATE TABLE IF NOT EXISTS swarms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
