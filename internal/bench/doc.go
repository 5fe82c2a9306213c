// Package bench measures m2m-ssh against OpenSSH's client and against no
// bridge at all, on the same work, behind a real sshd on 127.0.0.1.
//
// It is a test that runs only when asked:
//
//	M2M_BENCH=1 go test ./internal/bench -run TestBench -v -timeout 20m
//
// Its latency mode starts sessions through DelayProxy, a loopback proxy
// that holds each direction a set time, cold, through an OpenSSH master,
// and through a master m2m-ssh starts itself (ControlMaster auto), the
// last also five at once, counting connections, authentications and
// memory:
//
//	M2M_BENCH_LATENCY=1 go test ./internal/bench -run TestLatency -v -timeout 20m
//
// docs/benchmarks.md describes the method and holds the latest figures.
package bench
