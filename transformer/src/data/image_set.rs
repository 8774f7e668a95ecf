//! A labelled set of equally sized images, pixels as `f32` in `[0, 1]`.

use super::{DataError, Result};

/// Which part of an image set to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageSplit {
    /// The training images.
    Train,
    /// The held-out images (MNIST `t10k`, CIFAR `test_batch`/`test.bin`, Tiny-ImageNet `val/`,
    /// whose `test/` folder carries no labels).
    Test,
}

/// Labelled images of one shape. Pixels are stored image after image, each image channel-major
/// (`channel, row, column`), with values in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    channels: usize,
    height: usize,
    width: usize,
    num_classes: usize,
    pixels: Vec<f32>,
    labels: Vec<usize>,
}

impl ImageSet {
    /// Builds a set, checking that `pixels` holds `labels.len()` images of `channels x height x width`
    /// and that every label is below `num_classes`. `what` names the source in errors.
    pub fn new(
        what: &str,
        (channels, height, width): (usize, usize, usize),
        num_classes: usize,
        pixels: Vec<f32>,
        labels: Vec<usize>,
    ) -> Result<Self> {
        let mismatch = |detail: String| DataError::DimensionMismatch {
            what: what.to_string(),
            detail,
        };
        let image_size = channels
            .checked_mul(height)
            .and_then(|x| x.checked_mul(width))
            .ok_or_else(|| mismatch(format!("image shape {channels}x{height}x{width} overflows")))?;
        if image_size == 0 {
            return Err(mismatch(format!("empty image shape {channels}x{height}x{width}")));
        }
        let expected = image_size
            .checked_mul(labels.len())
            .ok_or_else(|| mismatch(format!("{} images of {image_size} values overflow", labels.len())))?;
        if pixels.len() != expected {
            return Err(mismatch(format!(
                "{} pixel values for {} labels of {channels}x{height}x{width} images (expected {expected})",
                pixels.len(),
                labels.len()
            )));
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= num_classes) {
            return Err(DataError::LabelOutOfRange {
                what: what.to_string(),
                index,
                label,
                classes: num_classes,
            });
        }
        Ok(ImageSet {
            channels,
            height,
            width,
            num_classes,
            pixels,
            labels,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Channels per image (1 grey, 3 RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Values per image: `channels * height * width`.
    pub fn image_size(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Number of classes; every label is below it.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[f32] {
        &self.pixels
    }

    /// All labels.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The pixels of image `i` (channel-major), or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let n = self.image_size();
        self.pixels
            .get(i.checked_mul(n)?..i.checked_add(1)?.checked_mul(n)?)
    }

    /// The label of image `i`, or `None` past the end.
    pub fn label(&self, i: usize) -> Option<usize> {
        self.labels.get(i).copied()
    }

    /// How many images each class has.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l) {
                *c += 1;
            }
        }
        counts
    }

    /// The first `n` images (all of them when `n >= len`).
    pub fn take(&self, n: usize) -> ImageSet {
        let n = n.min(self.len());
        ImageSet {
            pixels: self.pixels[..n * self.image_size()].to_vec(),
            labels: self.labels[..n].to_vec(),
            ..*self
        }
    }

    /// Splits into `(pixels, labels)`.
    pub fn into_parts(self) -> (Vec<f32>, Vec<usize>) {
        (self.pixels, self.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_shape_and_labels() {
        let s = ImageSet::new("t", (1, 2, 2), 3, vec![0.0; 8], vec![0, 2]).unwrap();
        assert_eq!((s.len(), s.image_size(), s.class_counts()), (2, 4, vec![1, 0, 1]));
        assert_eq!(s.image(1).map(<[f32]>::len), Some(4));
        assert_eq!(s.image(2), None);
        assert_eq!(s.take(1).len(), 1);
        assert!(matches!(
            ImageSet::new("t", (1, 2, 2), 3, vec![0.0; 7], vec![0, 2]),
            Err(DataError::DimensionMismatch { .. })
        ));
        assert!(matches!(
            ImageSet::new("t", (1, 2, 2), 2, vec![0.0; 8], vec![0, 2]),
            Err(DataError::LabelOutOfRange {
                index: 1,
                label: 2,
                classes: 2,
                ..
            })
        ));
        assert!(matches!(
            ImageSet::new("t", (0, 2, 2), 2, vec![], vec![]),
            Err(DataError::DimensionMismatch { .. })
        ));
    }
}
