//! Compaction without re-encoding what needs none. A column whose input chunks hold no
//! dictionary (offsets, event times, e-mail addresses: the columns whose values are mostly
//! distinct) is merged by copying its compressed pages as they are, with the chunk statistics,
//! column index and offset index carried over. Only dictionary-encoded columns are decoded and
//! encoded again, so their dictionaries span the whole output row group.
//!
//! [`SplicePlan::new`] decides from the input footers alone whether a set of files can be merged
//! this way (one Parquet schema, copyable columns, page indexes present) and which columns are
//! copied; [`Splicer`] writes the output. The caller still reads the columns it names (the Kafka
//! coordinates, for de-duplication) through [`SplicePlan::decode`]: a piece whose rows are not
//! all new must not be copied, and the caller falls back to the row-by-row merge.

use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::{Bytes, BytesMut};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::{
    ArrowColumnWriter, ArrowRowGroupWriterFactory, ArrowWriter, ArrowWriterOptions, compute_leaves,
};
use parquet::basic::{Encoding, EncodingMask, Type as PhysicalType};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, ColumnIndexBuilder, ParquetMetaData};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescPtr;

fn err(msg: impl Into<String>) -> ParquetError {
    ParquetError::General(msg.into())
}

/// The bytes of one input row group's column chunks, fetched in one read.
#[derive(Clone)]
pub struct Piece {
    input: ArrowReaderMetadata,
    row_group: usize,
    start: u64,
    bytes: Bytes,
}

impl Piece {
    /// The file range that holds row group `row_group`'s column chunks.
    pub fn range(meta: &ParquetMetaData, row_group: usize) -> Range<u64> {
        let rg = meta.row_group(row_group);
        let ranges = rg.columns().iter().map(|c| c.byte_range());
        let start = ranges.clone().map(|(s, _)| s).min().unwrap_or(0);
        let end = ranges.map(|(s, l)| s + l).max().unwrap_or(0);
        start..end
    }

    /// `bytes` must be the file's [`Piece::range`] for the row group.
    pub fn new(input: ArrowReaderMetadata, row_group: usize, bytes: Bytes) -> Result<Self> {
        let range = Self::range(input.metadata(), row_group);
        if bytes.len() as u64 != range.end - range.start {
            return Err(err(format!("row group {row_group}: {} bytes read for a range of {range:?}", bytes.len())));
        }
        Ok(Piece { input, row_group, start: range.start, bytes })
    }

    /// Rows in the row group.
    pub fn rows(&self) -> usize {
        self.input.metadata().row_group(self.row_group).num_rows() as usize
    }

    /// Bytes fetched.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when no byte was fetched.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn at(&self, start: u64, len: usize) -> Result<Bytes> {
        let from = start.checked_sub(self.start).map(|s| s as usize);
        match from {
            Some(from) if from + len <= self.bytes.len() => Ok(self.bytes.slice(from..from + len)),
            _ => Err(err(format!("bytes {start}+{len} are outside the row group read ({}+{})", self.start, self.bytes.len()))),
        }
    }
}

impl Length for Piece {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for Piece {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T> {
        let rest = (self.start + self.bytes.len() as u64).saturating_sub(start) as usize;
        Ok(bytes::Buf::reader(self.at(start, rest)?))
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        self.at(start, length)
    }
}

/// How a set of input files is merged: which leaf columns are copied page by page.
#[derive(Debug, Clone)]
pub struct SplicePlan {
    schema: SchemaRef,
    descr: SchemaDescPtr,
    /// Per leaf column: copied (true) or encoded again.
    copy: Vec<bool>,
    /// Top-level fields encoded again, with their leaf columns.
    encoded: Vec<(usize, Range<usize>)>,
    projection: ProjectionMask,
}

/// Leaf columns of each top-level field, in order.
fn roots(descr: &SchemaDescPtr) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for leaf in 0..descr.num_columns() {
        let root = descr.get_column_root_idx(leaf);
        match out.get_mut(root) {
            Some(r) => r.end = leaf + 1,
            None => out.push(leaf..leaf + 1),
        }
    }
    out
}

impl SplicePlan {
    /// The plan for merging `inputs` in order, or `None` when they must be merged row by row:
    /// their schemas differ, or no column can be copied. `read` names top-level columns the
    /// caller needs decoded whether or not they are copied.
    pub fn new(inputs: &[ArrowReaderMetadata], read: &[&str]) -> Option<SplicePlan> {
        let first = inputs.first()?;
        // The fields, not the file-level metadata (each file's Kafka ranges) read into the schema.
        let schema = Arc::new(arrow_schema::Schema::new(first.schema().fields().clone()));
        let descr = first.metadata().file_metadata().schema_descr_ptr();
        let same = |m: &ArrowReaderMetadata| {
            m.schema().fields() == schema.fields()
                && m.metadata().file_metadata().schema_descr().root_schema() == descr.root_schema()
        };
        if !inputs.iter().all(same) || read.iter().any(|n| schema.index_of(n).is_err()) {
            return None;
        }
        let roots = roots(&descr);
        if roots.len() != schema.fields().len() {
            return None;
        }
        let chunks = |leaf: usize| {
            inputs.iter().flat_map(move |m| {
                let meta = m.metadata();
                (0..meta.num_row_groups()).map(move |rg| (meta, rg, meta.row_group(rg).column(leaf)))
            })
        };
        let copyable = |leaf: usize| {
            let col = descr.column(leaf);
            let kind_ok = col.max_rep_level() == 0
                && matches!(
                    col.physical_type(),
                    PhysicalType::BOOLEAN
                        | PhysicalType::INT32
                        | PhysicalType::INT64
                        | PhysicalType::FLOAT
                        | PhysicalType::DOUBLE
                        | PhysicalType::BYTE_ARRAY
                );
            let codec = chunks(leaf).next().map(|(_, _, c)| c.compression_codec());
            kind_ok
                && chunks(leaf).all(|(meta, rg, c)| {
                    let mask = c.encodings_mask();
                    c.dictionary_page_offset().is_none()
                        && !mask.is_set(Encoding::RLE_DICTIONARY)
                        && !mask.is_set(Encoding::PLAIN_DICTIONARY)
                        && Some(c.compression_codec()) == codec
                        // (A chunk of nulls only reads back as "deprecated": it has no bounds.)
                        && c.statistics().is_some_and(|s| {
                            s.null_count_opt().is_some()
                                && s.min_bytes_opt().is_some() == s.max_bytes_opt().is_some()
                                && (!s.is_min_max_deprecated() || s.min_bytes_opt().is_none())
                        })
                        && meta.offset_index().and_then(|o| o.get(rg)?.get(leaf)).is_some()
                })
        };
        let mut copy = vec![false; descr.num_columns()];
        let mut encoded = Vec::new();
        let mut leaves = Vec::new();
        for (root, range) in roots.iter().enumerate() {
            let copied = range.len() == 1 && copyable(range.start);
            if copied {
                copy[range.start] = true;
            } else {
                encoded.push((root, range.clone()));
            }
            if !copied || read.contains(&schema.field(root).name().as_str()) {
                leaves.extend(range.clone());
            }
        }
        if !copy.contains(&true) {
            return None;
        }
        let projection = ProjectionMask::leaves(&descr, leaves);
        Some(SplicePlan { schema, descr, copy, encoded, projection })
    }

    /// Names of the columns whose pages are copied.
    pub fn copied(&self) -> Vec<String> {
        (0..self.copy.len()).filter(|&l| self.copy[l]).map(|l| self.descr.column(l).path().string()).collect()
    }

    /// The piece's rows of the columns encoded again and of the columns named by `read`, in
    /// batches of up to `batch_size` rows.
    pub fn decode(&self, piece: &Piece, batch_size: usize) -> Result<impl Iterator<Item = Result<RecordBatch>> + use<>> {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(piece.clone(), piece.input.clone())
            .with_row_groups(vec![piece.row_group])
            .with_projection(self.projection.clone())
            .with_batch_size(batch_size)
            .build()?;
        Ok(reader.map(|b| b.map_err(ParquetError::from)))
    }
}

/// The output row group being written.
struct Group {
    /// Per leaf column: its encoder, or the copied pages so far.
    columns: Vec<Column>,
    rows: usize,
    /// Input bytes of the pieces taken in.
    bytes: usize,
}

// One per leaf column of the open row group: their sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Column {
    Encoded(ArrowColumnWriter),
    Copied(CopiedChunk),
}

/// Writes one Parquet file from pieces: copied columns page by page, the others encoded again.
/// Pieces are whole input row groups; an output row group closes before a piece that would take
/// it past `row_group_rows` rows or `row_group_bytes` bytes of input. A piece's copied pages are
/// taken in at once and its bytes let go; its decoded rows are encoded batch by batch.
pub struct Splicer<W: Write + Send> {
    file: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    plan: SplicePlan,
    group: Option<Group>,
    row_group_rows: usize,
    row_group_bytes: usize,
}

impl<W: Write + Send> Splicer<W> {
    /// A splicer writing to `sink` the files of `plan`, closing a row group at `row_group_rows` rows or `row_group_bytes` of input.
    pub fn try_new(
        sink: W,
        plan: &SplicePlan,
        props: WriterProperties,
        row_group_rows: usize,
        row_group_bytes: usize,
    ) -> Result<Self> {
        let options = ArrowWriterOptions::new().with_properties(props).with_parquet_schema(plan.descr.as_ref().clone());
        let (file, factory) = ArrowWriter::try_new_with_options(sink, plan.schema.clone(), options)?.into_serialized_writer()?;
        Ok(Splicer { file, factory, plan: plan.clone(), group: None, row_group_rows, row_group_bytes })
    }

    /// Adds a piece. `batches` are its rows as [`SplicePlan::decode`] gives them; each is shown to
    /// `keep` before it is encoded. When `keep` says no, nothing more is added and `false` comes
    /// back: the file is then incomplete and must be abandoned.
    pub fn push(
        &mut self,
        piece: &Piece,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
        mut keep: impl FnMut(&RecordBatch) -> Result<bool>,
    ) -> Result<bool> {
        let rows = piece.rows();
        if self
            .group
            .as_ref()
            .is_some_and(|g| g.rows + rows > self.row_group_rows || g.bytes + piece.len() > self.row_group_bytes)
        {
            self.flush()?;
        }
        let group = match &mut self.group {
            Some(g) => g,
            None => {
                let writers = self.factory.create_column_writers(self.file.flushed_row_groups().len())?;
                let columns = writers
                    .into_iter()
                    .zip(&self.plan.copy)
                    .map(|(w, &copy)| if copy { Column::Copied(CopiedChunk::default()) } else { Column::Encoded(w) })
                    .collect();
                self.group.insert(Group { columns, rows: 0, bytes: 0 })
            }
        };
        let mut decoded = 0;
        for batch in batches {
            let batch = batch?;
            if !keep(&batch)? {
                return Ok(false);
            }
            decoded += batch.num_rows();
            for (root, leaves) in &self.plan.encoded {
                let field = self.plan.schema.field(*root);
                let array = batch.column_by_name(field.name()).ok_or_else(|| err(format!("{} not decoded", field.name())))?;
                for (leaf, column) in leaves.clone().zip(compute_leaves(field, array)?) {
                    match &mut group.columns[leaf] {
                        Column::Encoded(w) => w.write(&column)?,
                        Column::Copied(_) => return Err(err("an encoded column planned as copied")),
                    }
                }
            }
        }
        if decoded != rows {
            return Err(err(format!("{decoded} rows decoded from a row group of {rows}")));
        }
        for (leaf, column) in group.columns.iter_mut().enumerate() {
            if let Column::Copied(chunk) = column {
                chunk.add(piece, leaf)?;
            }
        }
        group.rows += rows;
        group.bytes += piece.len();
        Ok(true)
    }

    /// Closes the open row group, if any.
    pub fn flush(&mut self) -> Result<()> {
        let Some(group) = self.group.take() else { return Ok(()) };
        let mut rg = self.file.next_row_group()?;
        for (leaf, column) in group.columns.into_iter().enumerate() {
            match column {
                Column::Encoded(w) => w.close()?.append_to_row_group(&mut rg)?,
                Column::Copied(chunk) => {
                    let (bytes, close) = chunk.finish(&self.plan.descr, leaf)?;
                    rg.append_column(&bytes, close)?;
                }
            }
        }
        rg.close()?;
        Ok(())
    }

    /// Bytes held for the open row group: the copied pages and the encoders' buffers.
    pub fn in_progress_size(&self) -> usize {
        let column = |c: &Column| match c {
            Column::Encoded(w) => w.get_estimated_total_bytes(),
            Column::Copied(chunk) => chunk.buf.len(),
        };
        self.group.as_ref().map_or(0, |g| g.columns.iter().map(column).sum())
    }

    /// Bytes written to the sink so far.
    pub fn bytes_written(&self) -> usize {
        self.file.bytes_written()
    }

    /// The sink, for taking what is written so far (see [`ArrowWriter::inner_mut`]).
    pub fn inner_mut(&mut self) -> &mut W {
        self.file.inner_mut()
    }

    /// Closes the open row group and the file; returns the sink.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        self.file.into_inner()
    }
}

/// One output column chunk made of input chunks of one leaf column, and its merged metadata.
struct CopiedChunk {
    buf: BytesMut,
    locations: Vec<PageLocation>,
    unencoded_pages: Option<Vec<i64>>,
    index: Option<ColumnIndexBuilder>,
    /// `None` before the first chunk; then `Some(None)` once the bounds are unknown.
    stats: Option<Option<Statistics>>,
    rows: i64,
    values: i64,
    uncompressed: i64,
    unencoded: Option<i64>,
    encodings: i32,
    codec: Option<parquet::basic::CompressionCodec>,
}

impl Default for CopiedChunk {
    fn default() -> Self {
        CopiedChunk {
            buf: BytesMut::new(),
            locations: Vec::new(),
            unencoded_pages: Some(Vec::new()),
            index: None,
            stats: None,
            rows: 0,
            values: 0,
            uncompressed: 0,
            unencoded: Some(0),
            encodings: 0,
            codec: None,
        }
    }
}

impl CopiedChunk {
    /// Appends the piece's chunk of column `leaf`: its pages, page locations, column index and
    /// statistics.
    fn add(&mut self, p: &Piece, leaf: usize) -> Result<()> {
        let meta = p.input.metadata();
        let rg = meta.row_group(p.row_group);
        let c = rg.column(leaf);
        let (start, len) = c.byte_range();
        let base = self.buf.len() as i64;
        self.buf.extend_from_slice(&p.at(start, len as usize)?);
        let offsets = meta
            .offset_index()
            .and_then(|o| o.get(p.row_group)?.get(leaf))
            .ok_or_else(|| err("an input without an offset index"))?;
        for loc in offsets.page_locations() {
            self.locations.push(PageLocation {
                offset: loc.offset - start as i64 + base,
                compressed_page_size: loc.compressed_page_size,
                first_row_index: loc.first_row_index + self.rows,
            });
        }
        self.unencoded_pages =
            self.unencoded_pages.take().zip(offsets.unencoded_byte_array_data_bytes.as_ref()).map(|(mut a, b)| {
                a.extend(b);
                a
            });
        let first = self.codec.is_none();
        if first {
            self.index = Some(ColumnIndexBuilder::new(c.column_type()));
        }
        let pages = offsets.page_locations().len();
        if let Some(b) = self.index.as_mut()
            && !append_pages(b, meta.column_index().and_then(|ci| ci.get(p.row_group)?.get(leaf)), pages)
        {
            self.index = None;
        }
        // Bounds are known for a chunk that has both or holds only nulls.
        let own = c.statistics().filter(|s| {
            (s.min_bytes_opt().is_some() && s.max_bytes_opt().is_some()) || s.null_count_opt() == Some(c.num_values() as u64)
        });
        self.stats = Some(match self.stats.take() {
            None => own.cloned(),
            Some(acc) => acc.zip(own).and_then(|(a, b)| merge_statistics(a, b)),
        });
        self.rows += rg.num_rows();
        self.values += c.num_values();
        self.uncompressed += c.uncompressed_size();
        self.unencoded = self.unencoded.zip(c.unencoded_byte_array_data_bytes()).map(|(a, b)| a + b);
        self.encodings |= c.encodings_mask().as_i32();
        match self.codec {
            Some(codec) if codec != c.compression_codec() => return Err(err("copied chunks of different codecs")),
            _ => self.codec = Some(c.compression_codec()),
        }
        Ok(())
    }

    /// The chunk's bytes and what the row group writer needs to splice them in.
    fn finish(self, descr: &SchemaDescPtr, leaf: usize) -> Result<(Bytes, ColumnCloseResult)> {
        let mut b = ColumnChunkMetaData::builder(descr.column(leaf))
            .set_compression_codec(self.codec.ok_or_else(|| err("no pieces to splice"))?)
            .set_encodings_mask(EncodingMask::try_new(self.encodings)?)
            .set_total_compressed_size(self.buf.len() as i64)
            .set_total_uncompressed_size(self.uncompressed)
            .set_num_values(self.values)
            .set_data_page_offset(0)
            .set_unencoded_byte_array_data_bytes(self.unencoded);
        if let Some(Some(s)) = self.stats {
            b = b.set_statistics(s);
        }
        let close = ColumnCloseResult {
            bytes_written: self.buf.len() as u64,
            rows_written: self.rows as u64,
            metadata: b.build()?,
            bloom_filter: None,
            column_index: self.index.map(ColumnIndexBuilder::build).transpose()?,
            offset_index: Some(OffsetIndexMetaData {
                page_locations: self.locations,
                unencoded_byte_array_data_bytes: self.unencoded_pages,
            }),
        };
        Ok((self.buf.freeze(), close))
    }
}

/// Appends an input chunk's column index (`pages` pages) to `b`; false when it has none.
fn append_pages(b: &mut ColumnIndexBuilder, index: Option<&ColumnIndexMetaData>, pages: usize) -> bool {
    let Some(index) = index else { return false };
    if index.num_pages() as usize != pages {
        return false;
    }
    for i in 0..pages {
        let Some(nulls) = index.null_count(i) else { return false };
        if index.is_null_page(i) {
            b.append(true, Vec::new(), Vec::new(), nulls);
            continue;
        }
        let bounds = match index {
            ColumnIndexMetaData::BOOLEAN(x) => x.min_value(i).zip(x.max_value(i)).map(|(a, z)| (vec![*a as u8], vec![*z as u8])),
            ColumnIndexMetaData::INT32(x) => le(x.min_value(i), x.max_value(i), |v| v.to_le_bytes().to_vec()),
            ColumnIndexMetaData::INT64(x) => le(x.min_value(i), x.max_value(i), |v| v.to_le_bytes().to_vec()),
            ColumnIndexMetaData::FLOAT(x) => le(x.min_value(i), x.max_value(i), |v| v.to_le_bytes().to_vec()),
            ColumnIndexMetaData::DOUBLE(x) => le(x.min_value(i), x.max_value(i), |v| v.to_le_bytes().to_vec()),
            ColumnIndexMetaData::BYTE_ARRAY(x) => x.min_value(i).zip(x.max_value(i)).map(|(a, z)| (a.to_vec(), z.to_vec())),
            _ => None,
        };
        let Some((min, max)) = bounds else { return false };
        b.append(false, min, max, nulls);
    }
    true
}

fn le<T>(min: Option<&T>, max: Option<&T>, bytes: fn(&T) -> Vec<u8>) -> Option<(Vec<u8>, Vec<u8>)> {
    Some((bytes(min?), bytes(max?)))
}

/// Chunk statistics of two chunks together; `None` when they cannot be combined (then the
/// output chunk carries none, which readers take as "unknown").
fn merge_statistics(a: Statistics, b: &Statistics) -> Option<Statistics> {
    fn both<T: Clone>(a: ValueStatistics<T>, b: &ValueStatistics<T>, less: fn(&T, &T) -> bool) -> Option<ValueStatistics<T>> {
        // (The plan copies no column whose statistics use the deprecated fields.)
        // A side with no values has no bounds; a side with values but no bounds makes them unknown.
        let pick = |x: Option<&T>, xe: bool, y: Option<&T>, ye: bool, first: bool| match (x, y) {
            (Some(x), Some(y)) => Some(if less(y, x) == first { (y.clone(), ye) } else { (x.clone(), xe) }),
            (Some(x), None) => Some((x.clone(), xe)),
            (None, Some(y)) => Some((y.clone(), ye)),
            (None, None) => None,
        };
        let min = pick(a.min_opt(), a.min_is_exact(), b.min_opt(), b.min_is_exact(), true);
        let max = pick(a.max_opt(), a.max_is_exact(), b.max_opt(), b.max_is_exact(), false);
        let nulls = a.null_count_opt()? + b.null_count_opt()?;
        let compatible = a.is_min_max_backwards_compatible() && b.is_min_max_backwards_compatible();
        let (min_exact, max_exact) = (min.as_ref().is_some_and(|m| m.1), max.as_ref().is_some_and(|m| m.1));
        Some(
            ValueStatistics::new(min.map(|m| m.0), max.map(|m| m.0), None, Some(nulls), false)
                .with_min_is_exact(min_exact)
                .with_max_is_exact(max_exact)
                .with_backwards_compatible_min_max(compatible),
        )
    }
    fn bytes_less(x: &ByteArray, y: &ByteArray) -> bool {
        x.data() < y.data()
    }
    Some(match (a, b) {
        (Statistics::Boolean(a), Statistics::Boolean(b)) => Statistics::Boolean(both(a, b, |x, y| x < y)?),
        (Statistics::Int32(a), Statistics::Int32(b)) => Statistics::Int32(both(a, b, |x, y| x < y)?),
        (Statistics::Int64(a), Statistics::Int64(b)) => Statistics::Int64(both(a, b, |x, y| x < y)?),
        (Statistics::Float(a), Statistics::Float(b)) => Statistics::Float(both(a, b, |x, y| x < y)?),
        (Statistics::Double(a), Statistics::Double(b)) => Statistics::Double(both(a, b, |x, y| x < y)?),
        (Statistics::ByteArray(a), Statistics::ByteArray(b)) => Statistics::ByteArray(both(a, b, bytes_less)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parquet::write::{decode, encode, writer_properties, writer_properties_for};
    use crate::testing::sample::Rng;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use arrow_select::concat::concat_batches;
    use parquet::arrow::arrow_reader::ArrowReaderOptions;
    use parquet::file::metadata::PageIndexPolicy;
    use parquet::schema::types::ColumnPath;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("country", DataType::Utf8, true),
            Field::new("mail", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
            Field::new("tags", DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))), true),
            Field::new("offset", DataType::Int64, false),
        ]))
    }

    /// `rows` rows from offset `first`; `mail` is null in every row when `null_mail`.
    fn batch(rng: &mut Rng, first: i64, rows: usize, null_mail: bool) -> RecordBatch {
        let country = StringArray::from_iter((0..rows).map(|_| Some(rng.pick(&["fr", "de", "br", "jp"]))));
        let mail = StringArray::from_iter((0..rows).map(|i| {
            (!null_mail && rng.below(10) > 0).then(|| format!("u{}.{}@example.com", first + i as i64, rng.below(1000)))
        }));
        let score =
            Float64Array::from_iter((0..rows).map(|_| (rng.below(8) > 0).then(|| rng.below(1_000_000) as f64 / 7.0 - 5e4)));
        let mut tags = ListBuilder::new(StringBuilder::new());
        for _ in 0..rows {
            for _ in 0..rng.below(3) {
                tags.values().append_value(rng.pick(&["a", "b", "c"]));
            }
            tags.append(rng.below(5) > 0);
        }
        let offset = Int64Array::from_iter_values(first..first + rows as i64);
        let cols: Vec<ArrayRef> =
            vec![Arc::new(country), Arc::new(mail), Arc::new(score), Arc::new(tags.finish()), Arc::new(offset)];
        RecordBatch::try_new(schema(), cols).unwrap()
    }

    /// A file with dictionaries where `sample`'s values repeat.
    fn file(batches: &[RecordBatch], row_group_rows: usize, sample: &RecordBatch) -> Bytes {
        let props = writer_properties_for(sample, 1, row_group_rows).unwrap();
        Bytes::from(encode(batches, props).unwrap())
    }

    fn meta(bytes: &Bytes, policy: PageIndexPolicy) -> ArrowReaderMetadata {
        ArrowReaderMetadata::load(bytes, ArrowReaderOptions::new().with_page_index_policy(policy)).unwrap()
    }

    fn splice(files: &[Bytes], row_group_rows: usize) -> (SplicePlan, Bytes) {
        let metas: Vec<_> = files.iter().map(|f| meta(f, PageIndexPolicy::Optional)).collect();
        let plan = SplicePlan::new(&metas, &["offset"]).expect("a plan");
        let mut w =
            Splicer::try_new(Vec::new(), &plan, writer_properties(3, row_group_rows).unwrap(), row_group_rows, 1 << 30).unwrap();
        for (f, m) in files.iter().zip(&metas) {
            for rg in 0..m.metadata().num_row_groups() {
                let r = Piece::range(m.metadata(), rg);
                let piece = Piece::new(m.clone(), rg, f.slice(r.start as usize..r.end as usize)).unwrap();
                let mut seen = 0;
                let kept = w.push(&piece, plan.decode(&piece, 400).unwrap(), |b| {
                    assert!(b.column_by_name("offset").is_some(), "the columns asked for are decoded");
                    assert!(b.num_rows() <= 400);
                    seen += b.num_rows();
                    Ok(true)
                });
                assert!(kept.unwrap());
                assert_eq!(seen, piece.rows());
            }
        }
        (plan, Bytes::from(w.into_inner().unwrap()))
    }

    #[test]
    fn spliced_files_hold_the_inputs_rows_in_order_with_merged_statistics_and_indexes() {
        let mut rng = Rng::new(7);
        // Files of several sizes, some with more than one row group, one whose mail is all null.
        let mut inputs = Vec::new();
        let mut files = Vec::new();
        let mut first = 0;
        let sample = batch(&mut rng, 0, 1000, false);
        for (k, rows) in [700usize, 1200, 300, 2500, 900].into_iter().enumerate() {
            let b = batch(&mut rng, first, rows, k == 2);
            first += rows as i64 + 3;
            files.push(file(std::slice::from_ref(&b), 1000, &sample));
            inputs.push(b);
        }
        let (plan, out) = splice(&files, 2048);
        assert_eq!(plan.copied(), ["mail", "score", "offset"], "unique columns are copied, dictionary and nested ones not");

        let back = decode(out.clone()).unwrap();
        let want = concat_batches(&schema(), &inputs).unwrap();
        assert_eq!(concat_batches(&schema(), &back).unwrap(), want);

        // Row groups: input row groups whole, closed before one would pass 2048 rows.
        let m = meta(&out, PageIndexPolicy::Required);
        let md = m.metadata();
        let rows: Vec<i64> = md.row_groups().iter().map(|rg| rg.num_rows()).collect();
        assert_eq!(rows, [1900, 1300, 1500, 900]);
        let mut at = 0usize;
        for (g, rg) in md.row_groups().iter().enumerate() {
            let part = want.slice(at, rg.num_rows() as usize);
            at += rg.num_rows() as usize;
            // Copied columns: no dictionary, statistics that bound exactly what the group holds.
            let offsets = part.column(4).as_primitive::<Int64Type>();
            let stats = rg.column(4).statistics().unwrap();
            assert!(rg.column(4).dictionary_page_offset().is_none());
            assert_eq!(stats.min_bytes_opt().unwrap(), offsets.value(0).to_le_bytes());
            assert_eq!(stats.max_bytes_opt().unwrap(), offsets.value(offsets.len() - 1).to_le_bytes());
            let mail = part.column(1).as_string::<i32>();
            let present: Vec<&str> = mail.iter().flatten().collect();
            let s = rg.column(1).statistics().unwrap();
            assert_eq!(s.null_count_opt(), Some(mail.null_count() as u64), "group {g}");
            assert_eq!(s.min_bytes_opt(), present.iter().min().map(|v| v.as_bytes()));
            assert_eq!(s.max_bytes_opt(), present.iter().max().map(|v| v.as_bytes()));
            // Dictionary columns are encoded again, with one dictionary per output group.
            assert!(rg.column(0).dictionary_page_offset().is_some());
        }
        // The page indexes read back: one entry per copied page, first rows counted per group.
        let oi = md.offset_index().unwrap();
        let ci = md.column_index().unwrap();
        for (g, rg) in md.row_groups().iter().enumerate() {
            let pages = &oi[g][4].page_locations;
            assert_eq!(pages.len() >= 2, g < 3, "group {g}: the first three hold pages of several inputs");
            assert_eq!(pages[0].first_row_index, 0);
            assert!(pages.windows(2).all(|w| w[0].first_row_index < w[1].first_row_index && w[0].offset < w[1].offset));
            assert!(pages.iter().all(|p| p.first_row_index < rg.num_rows()));
            assert_eq!(ci[g][4].num_pages() as usize, pages.len());
            let ColumnIndexMetaData::INT64(idx) = &ci[g][4] else { panic!("an INT64 index") };
            let start = pages.last().unwrap().first_row_index as usize;
            let rows_before: usize = md.row_groups()[..g].iter().map(|r| r.num_rows() as usize).sum();
            assert_eq!(
                *idx.min_value(pages.len() - 1).unwrap(),
                want.column(4).as_primitive::<Int64Type>().value(rows_before + start)
            );
        }
        // Reading with a row selection goes through the offset index of copied columns.
        let sel = parquet::arrow::arrow_reader::RowSelection::from(vec![
            parquet::arrow::arrow_reader::RowSelector::skip(1000),
            parquet::arrow::arrow_reader::RowSelector::select(1500),
        ]);
        let some: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::new_with_metadata(out.clone(), m.clone())
            .with_row_selection(sel)
            .build()
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(concat_batches(&schema(), &some).unwrap(), want.slice(1000, 1500));

        // A batch the caller refuses stops the piece.
        let m0 = meta(&files[0], PageIndexPolicy::Optional);
        let r = Piece::range(m0.metadata(), 0);
        let piece = Piece::new(m0.clone(), 0, files[0].slice(r.start as usize..r.end as usize)).unwrap();
        let mut w = Splicer::try_new(Vec::new(), &plan, writer_properties(3, 2048).unwrap(), 2048, 1 << 30).unwrap();
        assert!(!w.push(&piece, plan.decode(&piece, 400).unwrap(), |_| Ok(false)).unwrap());
    }

    #[test]
    fn plans_decline_what_cannot_be_copied() {
        let mut rng = Rng::new(3);
        let sample = batch(&mut rng, 0, 600, false);
        let a = file(std::slice::from_ref(&sample), 1 << 20, &sample);
        let b = file(&[batch(&mut rng, 600, 600, false)], 1 << 20, &sample);
        let metas = |fs: &[&Bytes]| fs.iter().map(|f| meta(f, PageIndexPolicy::Optional)).collect::<Vec<_>>();
        assert!(SplicePlan::new(&metas(&[&a, &b]), &["offset"]).is_some());
        assert!(SplicePlan::new(&metas(&[&a, &b]), &["nope"]).is_none(), "a column asked for must exist");
        // Small files keep every dictionary: nothing to copy.
        let small = batch(&mut rng, 1200, 100, false);
        let small = file(std::slice::from_ref(&small), 1 << 20, &small);
        assert!(SplicePlan::new(&metas(&[&small]), &["offset"]).is_none());
        assert!(SplicePlan::new(&metas(&[&a, &small]), &["offset"]).is_none());
        // A column with a dictionary in one input is encoded again; the others are still copied.
        let props = writer_properties(1, 1 << 20)
            .unwrap()
            .into_builder()
            .set_column_dictionary_enabled(ColumnPath::from("score"), false)
            .set_column_dictionary_enabled(ColumnPath::from("offset"), false)
            .build();
        let d = Bytes::from(encode(&[batch(&mut rng, 1200, 600, false)], props).unwrap());
        assert_eq!(SplicePlan::new(&metas(&[&a, &d]), &["offset"]).unwrap().copied(), ["score", "offset"]);
        // Without page indexes, or with another schema, the merge is row by row.
        let no_index = metas(&[&a, &b]).iter().map(meta_without_index).collect::<Vec<_>>();
        assert!(SplicePlan::new(&no_index, &["offset"]).is_none());
        let other = batch(&mut rng, 0, 600, false).project(&[1, 2, 4]).unwrap();
        let c = file(std::slice::from_ref(&other), 1 << 20, &other);
        assert!(SplicePlan::new(&metas(&[&a, &c]), &["offset"]).is_none());
    }

    fn meta_without_index(m: &ArrowReaderMetadata) -> ArrowReaderMetadata {
        let md = m.metadata().as_ref().clone().into_builder().set_offset_index(None).set_column_index(None).build();
        ArrowReaderMetadata::try_new(Arc::new(md), ArrowReaderOptions::new()).unwrap()
    }

    #[test]
    fn statistics_merge_takes_the_outer_bounds_and_keeps_exactness() {
        let s = |min: Option<i64>, max: Option<i64>, nulls: u64| Statistics::int64(min, max, None, Some(nulls), false);
        let m = merge_statistics(s(Some(5), Some(9), 1), &s(Some(2), Some(7), 2)).unwrap();
        assert_eq!((m.min_bytes_opt(), m.max_bytes_opt()), (Some(&2i64.to_le_bytes()[..]), Some(&9i64.to_le_bytes()[..])));
        assert_eq!(m.null_count_opt(), Some(3));
        // A side without bounds (all null) adds only its nulls.
        let m = merge_statistics(s(Some(5), Some(9), 0), &s(None, None, 4)).unwrap();
        assert_eq!((m.min_bytes_opt(), m.null_count_opt()), (Some(&5i64.to_le_bytes()[..]), Some(4)));
        // An inexact (truncated) bound stays inexact when it wins, and exact when the other wins.
        let t = |min: &str, max: &str, exact: bool| {
            Statistics::ByteArray(
                ValueStatistics::new(Some(ByteArray::from(min)), Some(ByteArray::from(max)), None, Some(0), false)
                    .with_max_is_exact(exact),
            )
        };
        let m = merge_statistics(t("b", "y", false), &t("a", "x", true)).unwrap();
        assert_eq!((m.min_bytes_opt(), m.max_bytes_opt(), m.max_is_exact()), (Some(&b"a"[..]), Some(&b"y"[..]), false));
        let m = merge_statistics(t("b", "y", false), &t("a", "z", true)).unwrap();
        assert!(m.max_is_exact());
        // Unknown null counts or different types: no statistics.
        assert!(merge_statistics(Statistics::int64(Some(1), Some(2), None, None, false), &s(Some(1), Some(2), 0)).is_none());
        assert!(merge_statistics(Statistics::int32(Some(1), Some(2), None, Some(0), false), &s(Some(1), Some(2), 0)).is_none());
    }
}
