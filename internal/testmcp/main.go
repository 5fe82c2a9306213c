// Command testmcp is the MCP server that m2m-ssh's tests run behind sshd: a
// real process speaking MCP over stdin and stdout, with tools that exercise
// what a bridge must carry (large results, large arguments, any characters)
// and what it must survive (slow calls, a server that exits).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/machine-to-machine/m2m-ssh/internal/sshtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type echoArgs struct {
	Text string `json:"text"`
}

type blobArgs struct {
	Size int `json:"size" jsonschema:"bytes of text to return"`
}

type sleepArgs struct {
	Millis int `json:"millis"`
}

type exitArgs struct {
	Code int `json:"code"`
}

type envArgs struct {
	Name string `json:"name"`
}

func main() {
	s := mcp.NewServer(&mcp.Implementation{Name: "testmcp", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "returns its text"},
		func(_ context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			return text(a.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "blob", Description: "returns size bytes of text made by sshtest.Blob"},
		func(_ context.Context, _ *mcp.CallToolRequest, a blobArgs) (*mcp.CallToolResult, any, error) {
			return text(sshtest.Blob(a.Size)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "digest", Description: "returns the length and sha256 of its text"},
		func(_ context.Context, _ *mcp.CallToolRequest, a echoArgs) (*mcp.CallToolResult, any, error) {
			sum := sha256.Sum256([]byte(a.Text))
			return text(fmt.Sprintf("%d %s", len(a.Text), hex.EncodeToString(sum[:]))), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "sleep", Description: "answers after millis milliseconds"},
		func(ctx context.Context, _ *mcp.CallToolRequest, a sleepArgs) (*mcp.CallToolResult, any, error) {
			select {
			case <-time.After(time.Duration(a.Millis) * time.Millisecond):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			return text("slept"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "exit", Description: "ends the server process with code"},
		func(_ context.Context, _ *mcp.CallToolRequest, a exitArgs) (*mcp.CallToolResult, any, error) {
			os.Exit(a.Code)
			return nil, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "env", Description: "returns an environment variable"},
		func(_ context.Context, _ *mcp.CallToolRequest, a envArgs) (*mcp.CallToolResult, any, error) {
			return text(os.Getenv(a.Name)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "pid", Description: "returns the server's process id"},
		func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(os.Getpid())), nil, nil
		})
	if path := os.Getenv("TESTMCP_PIDFILE"); path != "" {
		os.WriteFile(path, []byte(fmt.Sprint(os.Getpid())), 0o644)
	}
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Printf("testmcp: %v", err)
	}
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
