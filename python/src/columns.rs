//! Flat rows into columns: a serde serializer that records one struct's fields in order, so
//! `predict` builds its columns from the same row type `analyze --format csv` writes, without
//! a map per row.

use serde::ser::{self, Impossible, Serialize};
use std::fmt;

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
    None,
}

/// A row's field names (once) and values.
#[derive(Debug, Default)]
pub struct Row {
    pub names: Vec<&'static str>,
    pub cells: Vec<Cell>,
}

#[derive(Debug)]
pub struct Unsupported(String);

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a flat row holds numbers, text and booleans, not {}", self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Unsupported(msg.to_string())
    }
}

/// The fields of `value`, a struct of scalars (as the CSV writer takes it).
pub fn row<T: Serialize>(value: &T) -> Result<Row, Unsupported> {
    let mut r = Row::default();
    value.serialize(Fields(&mut r))?;
    Ok(r)
}

struct Fields<'a>(&'a mut Row);

impl<'a> ser::SerializeStruct for Fields<'a> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, key: &'static str, value: &T) -> Result<(), Unsupported> {
        self.0.names.push(key);
        self.0.cells.push(value.serialize(Scalar)?);
        Ok(())
    }
    fn end(self) -> Result<(), Unsupported> {
        Ok(())
    }
}

macro_rules! unsupported {
    ($($name:ident: $t:ty),*) => {$(
        fn $name(self, _: $t) -> Result<Self::Ok, Unsupported> {
            Err(Unsupported(stringify!($t).into()))
        }
    )*};
}

impl<'a> ser::Serializer for Fields<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Unsupported> {
        Ok(self)
    }
    unsupported!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str, serialize_bytes: &[u8]);
    fn serialize_none(self) -> Result<(), Unsupported> {
        Err(Unsupported("nothing".into()))
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Unsupported> {
        Err(Unsupported("an option".into()))
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        Err(Unsupported("a unit".into()))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        Err(Unsupported("a unit".into()))
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Unsupported> {
        Err(Unsupported("a variant".into()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported("a variant".into()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported("a list".into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported("a tuple".into()))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported("a tuple".into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported("a variant".into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported("a map".into()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported("a variant".into()))
    }
}

/// One field's value: a scalar.
struct Scalar;

impl ser::Serializer for Scalar {
    type Ok = Cell;
    type Error = Unsupported;
    type SerializeSeq = Impossible<Cell, Unsupported>;
    type SerializeTuple = Impossible<Cell, Unsupported>;
    type SerializeTupleStruct = Impossible<Cell, Unsupported>;
    type SerializeTupleVariant = Impossible<Cell, Unsupported>;
    type SerializeMap = Impossible<Cell, Unsupported>;
    type SerializeStruct = Impossible<Cell, Unsupported>;
    type SerializeStructVariant = Impossible<Cell, Unsupported>;

    fn serialize_bool(self, v: bool) -> Result<Cell, Unsupported> {
        Ok(Cell::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Cell, Unsupported> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Cell, Unsupported> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Cell, Unsupported> {
        Ok(Cell::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Cell, Unsupported> {
        Ok(Cell::Int(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Cell, Unsupported> {
        Ok(Cell::UInt(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Cell, Unsupported> {
        Ok(Cell::UInt(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Cell, Unsupported> {
        Ok(Cell::UInt(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Cell, Unsupported> {
        Ok(Cell::UInt(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Cell, Unsupported> {
        Ok(Cell::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Cell, Unsupported> {
        Ok(Cell::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Cell, Unsupported> {
        Ok(Cell::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Cell, Unsupported> {
        Ok(Cell::Str(v.to_string()))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Cell, Unsupported> {
        Err(Unsupported("bytes".into()))
    }
    fn serialize_none(self) -> Result<Cell, Unsupported> {
        Ok(Cell::None)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<Cell, Unsupported> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Cell, Unsupported> {
        Ok(Cell::None)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Cell, Unsupported> {
        Ok(Cell::None)
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<Cell, Unsupported> {
        Ok(Cell::Str(variant.to_string()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<Cell, Unsupported> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Cell, Unsupported> {
        Err(Unsupported("a variant with data".into()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported("a list".into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported("a tuple".into()))
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported("a tuple".into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported("a variant".into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported("a map".into()))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported("a nested struct".into()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported("a variant".into()))
    }
}
