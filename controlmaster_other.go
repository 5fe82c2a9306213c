//go:build !unix

package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

const masterCommand = "serve-master"

// masterAction: a master needs Unix sockets and descriptor passing.
func masterAction(*cli.Context) error {
	return errors.New("connection sharing is not supported on this platform")
}
