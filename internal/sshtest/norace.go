//go:build !race

package sshtest

const raceEnabled = false
