package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/writer"
)

// FuzzReadEvents: any stream parses without panicking, and events the
// server writes come back as they were, around whatever else is there.
func FuzzReadEvents(f *testing.F) {
	f.Add("event: state\ndata: {\"pair\":\"p1\",\"kind\":\"state\",\"message\":\"paused\"}\n\n: heartbeat\n\n")
	f.Add(": c\n\ndata: {\ndata: }\n\nid: 3\nretry: 10\r\n\r\n")
	f.Add("data: not json\n\n\n\n")
	f.Fuzz(func(t *testing.T, stream string) {
		readEvents(bufio.NewReader(strings.NewReader(stream)), func(Event) bool { return true })

		// What the server writes survives whatever garbage comes before
		// it, once a blank line has ended the garbage.
		want := writer.Event{Time: time.Unix(1, 0).UTC(), Pair: "p\n1", Kind: "log", Message: stream}
		data, _ := json.Marshal(want)
		want = writer.Event{}
		json.Unmarshal(data, &want) // invalid UTF-8 becomes U+FFFD on the wire
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "%s\n\nevent: %s\ndata: %s\n\n", stream, want.Kind, data)
		var got []Event
		readEvents(bufio.NewReader(&buf), func(e Event) bool { got = append(got, e); return true })
		if len(got) == 0 || got[len(got)-1].Event != want || got[len(got)-1].Job != nil {
			t.Fatalf("stream %q: got %+v, want last %+v", buf.String(), got, want)
		}
	})
}
