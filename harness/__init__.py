"""What the tests and the benchmarks both need to run and watch real servers: processes on loopback
(``processes``). Neither imports the other; both import this."""
