package registry

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/handoffhq/handoff/schema"
)

// maxMessageIndexes bounds the message-index array read from untrusted
// bytes: one index per level of message nesting.
const maxMessageIndexes = 100

// AppendMessageIndexes appends Protobuf message indexes in Confluent's wire
// format: the path to the message in its .proto file (the index among the
// file's top-level messages, then among the nested messages of that one, …),
// as a zigzag varint count then zigzag varint indexes. [0], the file's
// first message, is written as the single byte 0; so is an empty path.
func AppendMessageIndexes(dst []byte, indexes []int) []byte {
	if len(indexes) == 0 || (len(indexes) == 1 && indexes[0] == 0) {
		return append(dst, 0)
	}
	dst = binary.AppendVarint(dst, int64(len(indexes)))
	for _, i := range indexes {
		dst = binary.AppendVarint(dst, int64(i))
	}
	return dst
}

// ParseMessageIndexes reads Protobuf message indexes in Confluent's wire
// format from b and returns them and the bytes after them. A count of 0
// means [0]. The error matches ErrWireFormat.
func ParseMessageIndexes(b []byte) (indexes []int, rest []byte, err error) {
	n, k := binary.Varint(b)
	if k <= 0 {
		return nil, nil, fmt.Errorf("%w: protobuf message indexes: count is truncated or overflows", ErrWireFormat)
	}
	b = b[k:]
	if n == 0 {
		return []int{0}, b, nil
	}
	if n < 0 || n > maxMessageIndexes {
		return nil, nil, fmt.Errorf("%w: protobuf message indexes: count %d out of range 0..%d", ErrWireFormat, n, maxMessageIndexes)
	}
	if int(n) > len(b) {
		return nil, nil, fmt.Errorf("%w: protobuf message indexes: count %d but %d bytes follow", ErrWireFormat, n, len(b))
	}
	indexes = make([]int, n)
	for i := range indexes {
		v, k := binary.Varint(b)
		if k <= 0 {
			return nil, nil, fmt.Errorf("%w: protobuf message indexes: index %d is truncated or overflows", ErrWireFormat, i)
		}
		if v < 0 || v > math.MaxInt32 {
			return nil, nil, fmt.Errorf("%w: protobuf message indexes: index %d is %d, out of range", ErrWireFormat, i, v)
		}
		indexes[i] = int(v)
		b = b[k:]
	}
	return indexes, b, nil
}

// protoSchema returns schema id parsed, checking that it is Protobuf.
func (c *Client) protoSchema(ctx context.Context, id int) (*schema.Parsed, error) {
	p, err := c.ParsedByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Type() != schema.Protobuf {
		return nil, fmt.Errorf("schema %d is %s, not PROTOBUF", id, p.Type())
	}
	return p, nil
}

func (s *Serializer) encodeProtobuf(ctx context.Context, id int, v any) (payload []byte, indexes []int, name string, err error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, nil, "", fmt.Errorf("protobuf: %T is not a proto.Message", v)
	}
	name = string(m.ProtoReflect().Descriptor().FullName())
	p, err := s.c.protoSchema(ctx, id)
	if err != nil {
		return nil, nil, "", err
	}
	if indexes, err = p.MessageIndexes(name); err != nil {
		return nil, nil, "", err
	}
	// Deterministic: one message, one payload (field and map-entry order
	// fixed), so payloads can be compared and hashed.
	if payload, err = (proto.MarshalOptions{Deterministic: true}).Marshal(m); err != nil {
		return nil, nil, "", err
	}
	return payload, indexes, name, nil
}

// decodeProtobuf reads payload as the message named by indexes, else by
// its full name, else v's own type, else the schema's first message.
func (d *Deserializer) decodeProtobuf(ctx context.Context, id int, indexes []int, name string, payload []byte, v any) error {
	p, err := d.c.protoSchema(ctx, id)
	if err != nil {
		return err
	}
	target, isTarget := v.(proto.Message)
	if indexes == nil {
		if name == "" && isTarget {
			name = string(target.ProtoReflect().Descriptor().FullName())
		}
		if name == "" {
			indexes = []int{0}
		} else if indexes, err = p.MessageIndexes(name); err != nil {
			return err
		}
	}
	desc, err := p.MessageDescriptor(indexes)
	if err != nil {
		return err
	}
	switch t := v.(type) {
	case *any:
		m := dynamicpb.NewMessage(desc)
		if err := proto.Unmarshal(payload, m); err != nil {
			return err
		}
		*t = m
	case *proto.Message:
		m := dynamicpb.NewMessage(desc)
		if err := proto.Unmarshal(payload, m); err != nil {
			return err
		}
		*t = m
	case proto.Message:
		if got := t.ProtoReflect().Descriptor().FullName(); got != desc.FullName() {
			return fmt.Errorf("protobuf: payload is a %s, not a %s", desc.FullName(), got)
		}
		if err := proto.Unmarshal(payload, t); err != nil {
			return err
		}
	default:
		return fmt.Errorf("protobuf: cannot decode into %T: want a proto.Message, *proto.Message or *any", v)
	}
	return nil
}
