//! Serializes an event enum's variant content alone: serde's derived,
//! externally tagged form `{"<variant>": <content>}` without the tag, so
//! the content is written once, straight as the payload, and the variant's
//! name is handed back beside it (no object to cut, no second parse to
//! check the cut).
//!
//! Only the variant forms carry content (newtype, tuple and struct
//! variants). Anything else (a unit variant, a hand-written map, a bare
//! value) fails here without a name recorded, and the caller takes the
//! general path.

use std::cell::Cell;

use serde::ser::{
    Impossible, Serialize, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleVariant, Serializer,
};

/// `event`'s variant content as a serializable value; serializing it
/// records the variant's name in `variant`.
pub struct VariantContent<'a, E> {
    /// The event.
    pub event: &'a E,
    /// Set to the variant's name when the event serialized as a variant
    /// with content.
    pub variant: &'a Cell<Option<&'static str>>,
}

impl<E: Serialize> Serialize for VariantContent<'_, E> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.event.serialize(ContentOnly {
            inner: serializer,
            variant: self.variant,
        })
    }
}

/// A serializer that forwards a variant's content to `inner` and refuses
/// every other form.
struct ContentOnly<'a, S> {
    inner: S,
    variant: &'a Cell<Option<&'static str>>,
}

/// The error for forms without a variant's content.
fn not_a_variant<E: serde::ser::Error>() -> E {
    E::custom("not an enum variant with content")
}

/// A tuple variant's fields, written as a tuple.
pub struct TupleContent<T>(T);

impl<T: SerializeTuple> SerializeTupleVariant for TupleContent<T> {
    type Ok = T::Ok;
    type Error = T::Error;

    fn serialize_field<F: Serialize + ?Sized>(&mut self, value: &F) -> Result<(), T::Error> {
        self.0.serialize_element(value)
    }

    fn end(self) -> Result<T::Ok, T::Error> {
        self.0.end()
    }
}

/// A struct variant's fields, written as a struct.
pub struct StructContent<T>(T);

impl<T: SerializeStruct> SerializeStructVariant for StructContent<T> {
    type Ok = T::Ok;
    type Error = T::Error;

    fn serialize_field<F: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &F,
    ) -> Result<(), T::Error> {
        self.0.serialize_field(key, value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), T::Error> {
        self.0.skip_field(key)
    }

    fn end(self) -> Result<T::Ok, T::Error> {
        self.0.end()
    }
}

/// Every form without content: refused, nothing recorded.
macro_rules! refuse {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $name(self, $(_: $arg),*) -> Result<S::Ok, S::Error> {
            Err(not_a_variant())
        })*
    };
}

impl<S: Serializer> Serializer for ContentOnly<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = TupleContent<S::SerializeTuple>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Impossible<S::Ok, S::Error>;
    type SerializeStructVariant = StructContent<S::SerializeStruct>;

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.variant.set(Some(variant));
        value.serialize(self.inner)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.variant.set(Some(variant));
        self.inner.serialize_tuple(len).map(TupleContent)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.variant.set(Some(variant));
        self.inner.serialize_struct(variant, len).map(StructContent)
    }

    refuse!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<S::Ok, S::Error> {
        Err(not_a_variant())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_variant())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Err(not_a_variant())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        Err(not_a_variant())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Err(not_a_variant())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Err(not_a_variant())
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Err(not_a_variant())
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    enum Shapes {
        Struct { a: u32, b: &'static str },
        Newtype(Vec<u8>),
        Tuple(u8, bool),
        Unit,
    }

    fn content(event: &Shapes) -> (Result<Vec<u8>, serde_json::Error>, Option<&'static str>) {
        let variant = Cell::new(None);
        let json = serde_json::to_vec(&VariantContent {
            event,
            variant: &variant,
        });
        (json, variant.get())
    }

    #[test]
    fn each_variant_form_writes_what_the_tagged_form_holds_under_its_tag() {
        // Given every variant form with content
        for event in [
            Shapes::Struct { a: 1, b: "x\"y" },
            Shapes::Newtype(vec![1, 2]),
            Shapes::Tuple(7, true),
        ] {
            // When its content is serialized alone
            let (json, variant) = content(&event);
            // Then it equals the tagged form's value under the variant name
            let tagged: serde_json::Value = serde_json::to_value(&event).unwrap();
            let (name, inner) = tagged.as_object().unwrap().iter().next().unwrap();
            assert_eq!(variant, Some(name.as_str()));
            let json: serde_json::Value = serde_json::from_slice(&json.unwrap()).unwrap();
            assert_eq!(&json, inner);
        }
    }

    #[test]
    fn a_unit_variant_is_refused_without_a_name() {
        let (json, variant) = content(&Shapes::Unit);
        assert!(json.is_err());
        assert_eq!(variant, None);
    }
}
