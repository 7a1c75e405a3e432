// Package csserver is a small configuration server: hosts register with
// it (hostconfig's signed API), send heartbeats, and read back themselves
// and the list of process servers.
//
// What it promises:
//
//   - No request is believed before its signature checks out against the
//     passphrase-derived key and the server's own certificate; a bad one
//     gets an unsigned 401 and counts as a failure of its address, and an
//     address with DefaultMaxFailures failures in FailureWindow is refused
//     (429) for BlockFor.
//   - A request outside hostconfig.ReplayWindow of the server's clock, or
//     whose nonce was seen, is refused and changes nothing; nonces are
//     remembered for twice the window, so no request can be replayed.
//   - Every answer to a well-signed request is signed (hostconfig.Reply),
//     so the host knows it talks to the holder of the passphrase.
//   - A host changes only its own record (the signed host id must be the
//     path's). The inventory is a bbolt file; each change is durable when
//     the answer is sent.
//   - A host silent for hostconfig.LostAfter is shown lost; Sweep logs it
//     once. The clock is injectable (Options.Now).
//   - Serve runs it in the process (cs serve, the demo) and announces its
//     address in Dir.AddrFile() only while it runs; Hosts asks the running
//     server there, pinned to its own certificate, or reads the store.
//
// It never logs the passphrase, the key or signatures.
package csserver
