// Command soak runs internal/soak: live exports and single-pair rollbacks
// of a real agent under CPU contention, every image compared with the
// source at its point. scripts/soak.sh builds mtconsole and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/internal/soak"
)

func main() {
	var o soak.Options
	flag.StringVar(&o.Bin, "bin", "./mtconsole", "the mtconsole binary that runs the agent")
	flag.StringVar(&o.Dir, "dir", "", "work directory (default: a temporary one, removed)")
	flag.BoolVar(&o.Keep, "keep", false, "keep the work directory")
	flag.DurationVar(&o.Duration, "for", 60*time.Second, "total time of the exports, split over the rounds")
	flag.IntVar(&o.Rounds, "rounds", 1, "topologies, each ending with a live rollback of one pair")
	flag.IntVar(&o.Disks, "disks", 3, "pairs per round")
	flag.Float64Var(&o.Rate, "rate", 60, "writes per second per disk")
	flag.IntVar(&o.Busy, "busy", 2, "busy processes beside the agent")
	flag.Uint64Var(&o.Seed, "seed", uint64(time.Now().UnixNano()), "seed (printed; give it to repeat a run)")
	verbose := flag.Bool("v", false, "print every refusal and rollback")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "soak: no arguments expected; see -h")
		os.Exit(2)
	}
	if *verbose {
		o.Log = os.Stderr
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	fmt.Printf("soak seed=%d for=%s rounds=%d disks=%d busy=%d agent GOMAXPROCS=1\n", o.Seed, o.Duration, o.Rounds, o.Disks, o.Busy)
	rep, err := soak.Run(ctx, o)
	for _, p := range rep.Problems {
		fmt.Println("WRONG:", p)
	}
	fmt.Println(rep.String())
	fmt.Println(rep.Detail())
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if rep.WrongExports > 0 || rep.WrongRollbacks > 0 || rep.Exports == 0 || rep.Rollbacks == 0 {
		os.Exit(1)
	}
}
