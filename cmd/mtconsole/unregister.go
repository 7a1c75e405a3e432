package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/hostconfig"
)

func newUnregisterCmd() *cobra.Command {
	var config string
	c := &cobra.Command{
		Use:   "unregister [--config PATH]",
		Short: "Remove this host from the configuration server",
		Long: `unregister asks the configuration server of --config to forget this host.
The local settings, passphrase and host id stay, so mtconsole register
registers the same host again.
` + registerExitHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, cl, err := hostconfig.Stored(hostconfig.PathsFor(config))
			if err != nil {
				return err
			}
			if err := cl.Unregister(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "unregistered host %s from %s (settings kept in %s)\n", cfg.HostID, cfg.CSAddr(), config)
			return nil
		},
	}
	c.Flags().StringVar(&config, "config", hostconfig.DefaultConfigPath, "the host config file")
	return c
}
