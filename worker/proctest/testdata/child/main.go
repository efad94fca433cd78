// Command child is the program proctest's tests run: `child exit N` prints
// its environment and exits with status N; `child serve` prints "ready" and
// exits with status 3 on SIGTERM.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
)

func main() {
	fmt.Fprintln(os.Stderr, "child: started")
	switch os.Args[1] {
	case "exit":
		for _, kv := range slices.Sorted(slices.Values(os.Environ())) {
			fmt.Println(kv)
		}
		code, _ := strconv.Atoi(os.Args[2])
		os.Exit(code)
	case "serve":
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		fmt.Println("ready")
		<-term
		fmt.Fprintln(os.Stderr, "child: terminated")
		os.Exit(3)
	}
}
