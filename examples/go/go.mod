module weightinit.example/client

// Debian bookworm's Go (what scripts/test-deps.sh installs) is 1.19; no requirements: the
// standard library only (no module proxy is needed, or reachable).
go 1.19
