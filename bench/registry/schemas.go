package main

import (
	"fmt"
	"strings"
)

// baseFields are the 16 fields of an order event: nested records, an enum,
// logical types, an array, a map and optional fields, as a real topic's
// value schema would have.
var baseFields = []string{
	`{"name":"order_id","type":"string"}`,
	`{"name":"customer_id","type":"string"}`,
	`{"name":"created_at","type":{"type":"long","logicalType":"timestamp-millis"}}`,
	`{"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID","SHIPPED","DELIVERED","CANCELLED"]}}`,
	`{"name":"currency","type":"string"}`,
	`{"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}}`,
	`{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[{"name":"sku","type":"string"},{"name":"quantity","type":"int"},{"name":"unit_price","type":"double"}]}}}`,
	`{"name":"shipping","type":{"type":"record","name":"Address","fields":[{"name":"street","type":"string"},{"name":"city","type":"string"},{"name":"postcode","type":"string"},{"name":"country","type":"string"}]}}`,
	`{"name":"billing","type":["null","Address"],"default":null}`,
	`{"name":"notes","type":["null","string"],"default":null}`,
	`{"name":"tags","type":{"type":"array","items":"string"},"default":[]}`,
	`{"name":"attributes","type":{"type":"map","values":"string"},"default":{}}`,
	`{"name":"channel","type":"string","default":"web"}`,
	`{"name":"priority","type":"int","default":0}`,
	`{"name":"gift","type":"boolean","default":false}`,
	`{"name":"discount","type":["null","double"],"default":null}`,
}

// orderSchema is the order record with the base fields followed by extra
// (whole field JSON objects).
func orderSchema(extra ...string) string {
	var b strings.Builder
	b.WriteString(`{"type":"record","name":"Order","namespace":"com.example.bench","doc":"An order as placed.","fields":[`)
	for i, f := range baseFields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f)
	}
	for _, f := range extra {
		b.WriteByte(',')
		b.WriteString(f)
	}
	b.WriteString(`]}`)
	return b.String()
}

// optionalField is an added field with a default, of one of three shapes,
// so that both the old and the new schema read each other's data.
func optionalField(name string, i int) string {
	switch i % 3 {
	case 0:
		return fmt.Sprintf(`{"name":%q,"type":["null","string"],"default":null}`, name)
	case 1:
		return fmt.Sprintf(`{"name":%q,"type":"long","default":0}`, name)
	default:
		return fmt.Sprintf(`{"name":%q,"type":"string","default":""}`, name)
	}
}

// transitiveVersion is version v (1-based) of the transitive subject: the
// base fields plus v-1 optional fields, each version adding one.
func transitiveVersion(v int, extra ...string) string {
	fields := make([]string, 0, v-1+len(extra))
	for i := 1; i < v; i++ {
		fields = append(fields, optionalField(fmt.Sprintf("added_%d", i), i))
	}
	return orderSchema(append(fields, extra...)...)
}

type schemaReq struct {
	Schema string `json:"schema"`
}
