package natsbus_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/payhook/payhook/internal/testenv"
)

// BenchmarkPersistMode prices what RawPersistMode saves: raw-record-sized
// messages (1.5 KB and a header) published without waiting, as ingress
// records verified requests, until every acknowledgement is in, on a
// one-replica file stream flushed per message (default) and asynchronously
// (async). The server runs in this process, so ns/op covers both sides.
func BenchmarkPersistMode(b *testing.B) {
	for _, mode := range []jetstream.PersistModeType{jetstream.DefaultPersistMode, jetstream.AsyncPersistMode} {
		b.Run(mode.String(), func(b *testing.B) {
			js, err := jetstream.New(testenv.StartNATS(b).Connect(b))
			if err != nil {
				b.Fatal(err)
			}
			sc := jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, PersistMode: mode}
			if _, err := js.CreateStream(context.Background(), sc); err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 1500)
			b.ResetTimer()
			for i := range b.N {
				m := &nats.Msg{Subject: "raw.jpglo.accepted", Data: body, Header: nats.Header{"Payhook-Event-Id": []string{strconv.Itoa(i)}}}
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
			}
			<-js.PublishAsyncComplete()
		})
	}
}
