package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
)

// client drives one bridge process with raw newline-delimited JSON-RPC
// over its stdin and stdout: no SDK, no JSON decoding of results, so that
// the client is never what a figure measures.
type client struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *sshtest.Buffer
	line   []byte
	req    []byte
	id     int
}

func startClient(ctx context.Context, argv, env []string) (*client, time.Time, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	c := &client{cmd: cmd, stderr: &sshtest.Buffer{}}
	cmd.Stderr = c.stderr
	var err error
	if c.in, err = cmd.StdinPipe(); err != nil {
		return nil, time.Time{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, time.Time{}, err
	}
	c.out = bufio.NewReaderSize(stdout, 1<<20)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, start, err
	}
	return c, start, nil
}

const initialize = `"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}`

// request writes one request with the next id and returns that id.
func (c *client) request(body string) (int, error) {
	c.id++
	c.req = append(c.req[:0], `{"jsonrpc":"2.0","id":`...)
	c.req = strconv.AppendInt(c.req, int64(c.id), 10)
	c.req = append(c.req, ',')
	c.req = append(c.req, body...)
	c.req = append(c.req, "}\n"...)
	_, err := c.in.Write(c.req)
	return c.id, err
}

func (c *client) notify(body string) error {
	_, err := io.WriteString(c.in, `{"jsonrpc":"2.0",`+body+"}\n")
	return err
}

// response reads one frame; it is valid until the next call.
func (c *client) response() ([]byte, error) {
	c.line = c.line[:0]
	for {
		part, err := c.out.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			c.line = append(c.line, part...)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading a response: %w (stderr: %s)", err, tail(c.stderr))
		}
		if len(c.line) == 0 {
			return check(part)
		}
		c.line = append(c.line, part...)
		return check(c.line)
	}
}

func check(frame []byte) ([]byte, error) {
	head := frame[:min(len(frame), 120)]
	if !bytes.Contains(head, []byte(`"result"`)) {
		return nil, fmt.Errorf("not a result: %.200s", frame)
	}
	return frame, nil
}

// call sends one request and waits for its response, checking the id.
func (c *client) call(body string) ([]byte, error) {
	id, err := c.request(body)
	if err != nil {
		return nil, err
	}
	resp, err := c.response()
	if err != nil {
		return nil, err
	}
	want := append([]byte(`"id":`), strconv.Itoa(id)...)
	if !bytes.Contains(resp[:min(len(resp), 64)], append(want, ',')) {
		return nil, fmt.Errorf("response to %d out of order: %.100s", id, resp)
	}
	return resp, nil
}

// close ends the process by closing its stdin and returns its usage.
func (c *client) close() (*syscall.Rusage, error) {
	c.in.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("%s: %w (stderr: %s)", c.cmd.Args[0], err, tail(c.stderr))
		}
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
		return nil, fmt.Errorf("%s did not exit after its stdin closed", c.cmd.Args[0])
	}
	return c.cmd.ProcessState.SysUsage().(*syscall.Rusage), nil
}

// hwm is the process's peak resident set so far, in bytes.
func hwm(pid int) (int64, error) { return procKB(pid, "VmHWM:") }

// procKB is a size field of /proc/pid/status, in bytes.
func procKB(pid int, field string) (int64, error) {
	return procFileKB(fmt.Sprintf("/proc/%d/status", pid), field)
}

// procFileKB is a "Field:   N kB" line of a /proc file, in bytes.
func procFileKB(path, field string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no " + field + " in " + path)
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// tail is the end of a child's output, for a failure message.
func tail(b *sshtest.Buffer) string {
	s := b.String()
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}
